"""Bring a colour-image mask onto the depth image's pixel grid by intrinsics scaling.

Many RGB-D drivers publish depth already aligned to the colour camera but at another resolution (e.g. colour
1280x720, aligned depth 640x360). Both images then share the optical centre and orientation and differ only
in their pinhole intrinsics, so a depth pixel maps to the colour pixel
``u_c = (u_d - cx_d) * fx_c / fx_d + cx_c`` (same for v). This is exact for aligned streams; unaligned
streams (different optical centres) need a full registration with extrinsics, which is out of scope here.
"""
from __future__ import annotations

import numpy as np

from strvos_core.pose.depth import check_intrinsics


def mask_on_depth_grid(
    mask: np.ndarray, color_K: np.ndarray, depth_K: np.ndarray, depth_shape: tuple[int, int]
) -> np.ndarray:
    """Nearest-neighbour resample of a colour-grid mask onto a depth grid; outside the colour image is False."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty HxW array, got shape {mask.shape}")
    color = check_intrinsics(color_K, "colour camera K")
    depth = check_intrinsics(depth_K, "depth camera K")
    height, width = int(depth_shape[0]), int(depth_shape[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"depth shape must be positive, got {depth_shape}")
    if mask.shape == (height, width) and np.allclose(color, depth):
        return mask.copy()
    # Pixel centres of the depth grid, mapped into the colour image.
    u_color = (np.arange(width) - depth[0, 2]) * (color[0, 0] / depth[0, 0]) + color[0, 2]
    v_color = (np.arange(height) - depth[1, 2]) * (color[1, 1] / depth[1, 1]) + color[1, 2]
    cols = np.rint(u_color).astype(np.int64)
    rows = np.rint(v_color).astype(np.int64)
    col_ok = (cols >= 0) & (cols < mask.shape[1])
    row_ok = (rows >= 0) & (rows < mask.shape[0])
    out = np.zeros((height, width), dtype=bool)
    if col_ok.any() and row_ok.any():
        out[np.ix_(row_ok, col_ok)] = mask[np.ix_(rows[row_ok], cols[col_ok])]
    return out
