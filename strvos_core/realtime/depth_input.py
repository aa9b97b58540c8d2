"""A depth frame matched to a colour frame, checked once, turned into what the pose estimator needs.

Drivers publish depth registered to the colour image (same size: the mask is used as is) or at another
resolution (the mask is carried onto the depth grid by the two intrinsics). Everything about the depth image
that can be wrong (encoding, dtype, sizes against the CameraInfos, intrinsics) is decided here, and each
failure is a DepthProblem with a kind that a node counts and logs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from strvos_core.pose import check_intrinsics, mask_on_depth_grid
from strvos_core.pose.depth import check_depth


@dataclass(frozen=True)
class Intrinsics:
    """A camera's pinhole matrix and the image size it describes (a CameraInfo's k, width, height)."""

    K: np.ndarray  # 3x3 or 9 values, as received: checked by `checked`
    width: int
    height: int

    def checked(self, name: str, image_shape: tuple[int, int]) -> np.ndarray:
        """The 3x3 float64 K after checking it and that it describes an image of ``image_shape`` (H, W)."""
        if self.width == 0 or self.height == 0:
            raise DepthProblem("depth", f"{name} has zero image size")
        if (self.height, self.width) != tuple(image_shape):
            raise DepthProblem("depth", f"{name} is {self.width}x{self.height} but its image is "
                                        f"{image_shape[1]}x{image_shape[0]}")
        try:
            return check_intrinsics(self.K, name)
        except ValueError as exc:
            raise DepthProblem("depth", str(exc)) from None


@dataclass(frozen=True)
class DepthImage:
    """A depth image as the driver published it, with the CameraInfo stamped with it (None when none came)."""

    image: np.ndarray  # HxW uint16 millimetres (16UC1, mono16) or float32 metres (32FC1)
    encoding: str
    info: Intrinsics | None = None


@dataclass(frozen=True)
class DepthView:
    """Depth ready for `PoseEstimator.estimate(to_depth_grid(mask), image, K, encoding=encoding)`."""

    image: np.ndarray
    encoding: str
    K: np.ndarray
    to_depth_grid: Callable[[np.ndarray], np.ndarray]


class DepthProblem(ValueError):
    """Depth that cannot give a pose for this frame; ``kind`` names the input at fault (for counting)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _same_grid(mask: np.ndarray) -> np.ndarray:
    return mask


def depth_for_colour(depth: DepthImage, color_info: Intrinsics | None, color_shape: tuple[int, int]) -> DepthView:
    """The depth view for a colour frame of ``color_shape`` (H, W); DepthProblem when there is none."""
    try:
        raw = check_depth(depth.image, depth.encoding)
    except ValueError as exc:
        raise DepthProblem("depth", str(exc)) from None
    depth_shape = raw.shape
    infos = {"depth camera_info": (depth.info, depth_shape), "colour camera_info": (color_info, color_shape)}
    checked = {name: info.checked(name, shape) for name, (info, shape) in infos.items() if info is not None}
    if depth_shape == tuple(color_shape):
        K = checked.get("depth camera_info", checked.get("colour camera_info"))
        if K is None:
            raise DepthProblem("camera_info", "no CameraInfo matches this depth frame: no pose")
        return DepthView(raw, depth.encoding, K, _same_grid)
    if len(checked) < 2:
        raise DepthProblem("depth size", f"depth {depth_shape[1]}x{depth_shape[0]} differs from colour "
                                         f"{color_shape[1]}x{color_shape[0]} and both CameraInfos are needed to "
                                         "scale it")
    K_depth, K_color = checked["depth camera_info"], checked["colour camera_info"]
    return DepthView(raw, depth.encoding, K_depth,
                     lambda mask: mask_on_depth_grid(mask, K_color, K_depth, depth_shape))
