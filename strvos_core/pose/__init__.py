"""Depth -> 3D target pose. Estimators are plugins: entry-point group "strvos.pose_estimators"."""
from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from strvos_core.pose.depth import DEPTH_ENCODINGS, check_intrinsics, depth_to_metres
from strvos_core.pose.pca import PCAPoseConfig, PCAPoseEstimator, PoseEstimate
from strvos_core.pose.registration import mask_on_depth_grid

ENTRY_POINT_GROUP = "strvos.pose_estimators"
_BUILTIN = {"pca": PCAPoseEstimator}


@lru_cache(maxsize=1)
def _registered() -> dict:
    """name -> entry point; scanning installed distributions takes tens of ms, so it is done once."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of the installed pose estimators."""
    return sorted(set(_BUILTIN) | set(_registered()))


def create_pose_estimator(name: str = "pca", **options):
    """Instantiate the pose estimator registered under ``name`` with keyword ``options``."""
    if name in _registered():
        return _registered()[name].load()(**options)
    if name in _BUILTIN:
        return _BUILTIN[name](**options)
    raise ValueError(f"unknown pose estimator {name!r}; available: {available()}")


__all__ = [
    "DEPTH_ENCODINGS",
    "PCAPoseConfig",
    "PCAPoseEstimator",
    "PoseEstimate",
    "available",
    "check_intrinsics",
    "create_pose_estimator",
    "depth_to_metres",
    "mask_on_depth_grid",
]
