"""Target pose from masked depth: robust centre + principal axes of the back-projected points.

Why these choices:
- Masks bleed over object borders onto the background, so points whose depth is far from the median depth
  of the mask (beyond ``outlier_mads`` robust standard deviations, never closer than ``min_band_m``) are
  dropped before anything else.
- A pixel covers a surface patch of area z^2 cos(a) / (fx fy cos(i)) (a: ray to optical axis, i: ray to
  surface normal), so the centre and the covariance weight each point by that area: the result is the
  centroid of the visible *surface*, not of the pixels, and does not drift towards the near side of a
  tilted object. The normal is the least-spread principal axis of a first z^2-weighted pass (cos(i) is
  floored at ``min_incidence_cos`` so grazing points cannot dominate).
- The principal axes give a 6-DoF orientation only when they are well separated (eigenvalue ratios below
  ``max_eigen_ratio``); a disc or a sphere has no preferred in-plane axis, so it gets identity and
  ``orientation_valid=False`` rather than a random, flickering rotation.
Axis convention of the returned rotation (columns): x = major axis (sign: towards +x of the camera, else +y),
z = least-spread axis (for a surface: its normal) pointing towards the camera, y = z cross x.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from strvos_core.pose.depth import check_intrinsics
from strvos_core.pose.geometry import quaternion_from_matrix

IDENTITY_QUATERNION = (0.0, 0.0, 0.0, 1.0)


@dataclass
class PoseEstimate:
    """A target pose in the depth camera's optical frame (metres, REP-103)."""

    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    orientation: tuple[float, float, float, float] = IDENTITY_QUATERNION
    position_valid: bool = False
    orientation_valid: bool = False
    extent: np.ndarray = field(default_factory=lambda: np.zeros(3))
    num_points: int = 0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass
class PCAPoseConfig:
    """Tuning of :class:`PCAPoseEstimator` (defaults suit table-top objects at 0.3-3 m)."""

    min_points: int = 20            # fewer valid depth samples than this: no pose
    outlier_mads: float = 3.0       # keep |z - median| <= outlier_mads * 1.4826 * MAD ...
    min_band_m: float = 0.02        # ... but never reject within this band around the median depth
    max_eigen_ratio: float = 0.7    # orientation needs lambda2/lambda1 and lambda3/lambda2 below this
    min_incidence_cos: float = 0.25  # floor of cos(ray, normal) in the surface-area weights
    max_points: int = 20000         # larger masks are subsampled on a regular grid (bounded time per frame)

    def __post_init__(self) -> None:
        if self.max_points < self.min_points:
            raise ValueError(f"max_points ({self.max_points}) must be >= min_points ({self.min_points})")
        if self.min_points < 3:
            raise ValueError(f"min_points must be >= 3, got {self.min_points}")
        if self.outlier_mads <= 0 or self.min_band_m < 0:
            raise ValueError("outlier_mads must be > 0 and min_band_m >= 0")
        if not 0 < self.min_incidence_cos <= 1:
            raise ValueError(f"min_incidence_cos must be in (0, 1], got {self.min_incidence_cos}")
        if not 0 < self.max_eigen_ratio < 1:
            raise ValueError(f"max_eigen_ratio must be in (0, 1), got {self.max_eigen_ratio}")


class PCAPoseEstimator:
    """Robust centre and principal-axes orientation of a mask's depth points."""

    def __init__(self, config: PCAPoseConfig | None = None, **overrides) -> None:
        self.config = config or PCAPoseConfig(**overrides)

    def estimate(self, mask: np.ndarray, depth_m: np.ndarray, K: np.ndarray) -> PoseEstimate:
        """Pose of the masked region. ``depth_m``: float metres, NaN invalid; ``mask`` on the same grid."""
        mask = np.asarray(mask)
        depth_m = np.asarray(depth_m)
        if mask.ndim != 2 or mask.shape != depth_m.shape:
            raise ValueError(f"mask {mask.shape} and depth {depth_m.shape} must be HxW arrays of the same size")
        K = check_intrinsics(K, "depth camera K")
        valid = (mask if mask.dtype == bool else mask.astype(bool)) & (depth_m > 0)  # NaN > 0 is False
        count = np.count_nonzero(valid)
        # Large masks: a regular pixel grid (same stride on both axes) keeps the spatial distribution.
        stride = int(np.ceil(np.sqrt(count / self.config.max_points))) if count > self.config.max_points else 1
        rows, cols = np.nonzero(valid[::stride, ::stride])
        rows, cols = rows * stride, cols * stride
        z = depth_m[rows, cols].astype(np.float64)
        if z.size:
            keep = self._inliers(z)
            rows, cols, z = rows[keep], cols[keep], z[keep]
        if z.size < self.config.min_points:
            return PoseEstimate(num_points=int(z.size))
        points = _back_project_columns(rows, cols, z, K)  # 3xN: contiguous rows make the sums below cheap
        ranges = np.sqrt(np.einsum("ij,ij->j", points, points))
        weights = z * z
        centre, covariance = _weighted_moments(points, weights)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        if eigenvalues[0] < self.config.max_eigen_ratio * eigenvalues[1]:  # a normal is defined: area weights
            cos_normal = np.abs(eigenvectors[:, 0] @ points) / ranges  # |ray . normal|
            incidence = np.maximum(cos_normal, self.config.min_incidence_cos)
            weights = z * z * (z / ranges) / incidence
            centre, covariance = _weighted_moments(points, weights)
        rotation, orientation_valid = self._axes(covariance, centre)
        local = rotation.T @ (points - centre[:, None])
        extent = local.max(axis=1) - local.min(axis=1)
        return PoseEstimate(
            position=centre,
            orientation=quaternion_from_matrix(rotation) if orientation_valid else IDENTITY_QUATERNION,
            position_valid=True,
            orientation_valid=orientation_valid,
            extent=extent,
            num_points=int(z.size),
            rotation=rotation,
        )

    def _inliers(self, z: np.ndarray) -> np.ndarray:
        median = np.median(z)
        mad = np.median(np.abs(z - median))
        band = max(self.config.outlier_mads * 1.4826 * mad, self.config.min_band_m)
        return np.abs(z - median) <= band

    def _axes(self, covariance: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, bool]:
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
        l3, l2, l1 = np.maximum(eigenvalues, 0.0)
        ratio = self.config.max_eigen_ratio
        if l1 <= 0 or l2 > ratio * l1 or l3 > ratio * l2:
            return np.eye(3), False
        major, normal = eigenvectors[:, 2], eigenvectors[:, 0]
        if normal @ centre > 0:  # make the least-spread axis face the camera
            normal = -normal
        reference = 0 if abs(major[0]) > 1e-6 else 1
        if major[reference] < 0:
            major = -major
        middle = np.cross(normal, major)
        return np.column_stack([major, middle, normal]), True


def _back_project_columns(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """3xN optical-frame points (x, y, z rows) of pixels at depth z: geometry.back_project, transposed."""
    points = np.empty((3, z.size))
    np.multiply(cols - K[0, 2], z / K[0, 0], out=points[0])
    np.multiply(rows - K[1, 2], z / K[1, 1], out=points[1])
    points[2] = z
    return points


def _weighted_moments(points: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and covariance of 3xN points."""
    weights = weights / weights.sum()
    centre = points @ weights
    centred = points - centre[:, None]
    return centre, (centred * weights) @ centred.T
