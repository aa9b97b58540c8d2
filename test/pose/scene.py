"""Ray-cast synthetic geometry in front of a pinhole camera: exact depth and masks with known poses."""
from __future__ import annotations

import numpy as np


def intrinsics(width: int, height: int, focal: float) -> np.ndarray:
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def rotation(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> np.ndarray:
    """R = Rz @ Ry @ Rx (degrees)."""
    ax, ay, az = np.radians([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rays(K: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """HxWx3 ray directions with z = 1 through each pixel centre."""
    height, width = shape
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)


def render_rectangle(K, shape, R, centre, size) -> tuple[np.ndarray, np.ndarray]:
    """Depth (metres, inf where missed) and mask of a rectangle of ``size`` (w along R[:,0], h along R[:,1])."""
    d = rays(K, shape)
    normal = R[:, 2]
    denom = d @ normal
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (centre @ normal) / denom
    points = d * s[..., None]
    local = (points - centre) @ R
    mask = (np.abs(local[..., 0]) <= size[0] / 2) & (np.abs(local[..., 1]) <= size[1] / 2) & (s > 0)
    depth = np.where(mask, s, np.inf)
    return depth, mask


def convention(R: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The estimator's axis convention applied to a rectangle whose width is along R[:,0]."""
    major, normal = R[:, 0].copy(), R[:, 2].copy()
    if normal @ centre > 0:
        normal = -normal
    if (major[0] if abs(major[0]) > 1e-6 else major[1]) < 0:
        major = -major
    return np.column_stack([major, np.cross(normal, major), normal])


def encode(depth_m: np.ndarray, encoding: str) -> np.ndarray:
    """Depth as a driver would publish it: 16UC1 mm (0 invalid) or 32FC1 m (NaN invalid)."""
    if encoding == "16UC1":
        finite = np.isfinite(depth_m)
        return np.where(finite, np.rint(np.where(finite, depth_m, 0) * 1000.0), 0).astype(np.uint16)
    return np.where(np.isfinite(depth_m), depth_m, np.nan).astype(np.float32)
