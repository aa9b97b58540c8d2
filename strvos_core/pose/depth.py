"""Depth images in metres, whatever their ROS encoding (REP-118), and intrinsics checks.

Drivers publish either raw 16-bit millimetres ("16UC1", some say "mono16") with 0 meaning "no return", or
32-bit float metres ("32FC1") with NaN/inf (REP-117) or 0 meaning invalid. Everything downstream works in
metres with NaN as the single invalid marker, so the unit and the validity rule are decided here, once, from
the encoding. A pose needs only a few thousand of a frame's pixels, so besides converting a whole image
(:func:`depth_to_metres`) the rule is also available per pixel set (:func:`valid_depth`, :func:`depth_values_in_metres`).
"""
from __future__ import annotations

import numpy as np

MILLIMETRE_ENCODINGS = ("16UC1", "mono16")
METRE_ENCODINGS = ("32FC1",)
DEPTH_ENCODINGS = MILLIMETRE_ENCODINGS + METRE_ENCODINGS


def check_depth(depth: np.ndarray, encoding: str) -> np.ndarray:
    """``depth`` as an array after checking it is a non-empty HxW image of the dtype its encoding says."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"depth encoding {encoding!r} is not supported; expected one of {DEPTH_ENCODINGS}")
    array = np.asarray(depth)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"depth image must be a non-empty HxW array, got shape {array.shape}")
    if encoding in MILLIMETRE_ENCODINGS and array.dtype != np.uint16:
        raise ValueError(f"{encoding} depth must be uint16 millimetres, got dtype {array.dtype}")
    if encoding in METRE_ENCODINGS and array.dtype != np.float32:
        raise ValueError(f"32FC1 depth must be float32 metres, got dtype {array.dtype}")
    return array


def valid_depth(depth: np.ndarray, encoding: str | None) -> np.ndarray:
    """Boolean image of the pixels with a valid return. ``encoding`` None: float metres (as 32FC1)."""
    if encoding in MILLIMETRE_ENCODINGS:
        return depth != 0
    return (depth > 0) & (depth < np.inf)  # NaN compares False both times


def depth_values_in_metres(values: np.ndarray, encoding: str | None) -> np.ndarray:
    """float64 metres of depth values already known to be valid (see :func:`valid_depth`)."""
    if encoding in MILLIMETRE_ENCODINGS:
        return values * 0.001
    return values.astype(np.float64)


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """Return a float32 HxW copy of ``depth`` in metres, NaN where the sensor gave no valid return."""
    array = check_depth(depth, encoding)
    if encoding in MILLIMETRE_ENCODINGS:
        metres = array.astype(np.float32) * np.float32(0.001)
        metres[array == 0] = np.nan
        return metres
    metres = array.astype(np.float32, copy=True)
    metres[~valid_depth(array, encoding)] = np.nan
    return metres


def check_intrinsics(K: np.ndarray, name: str = "K") -> np.ndarray:
    """Validate a 3x3 pinhole matrix (positive finite focal lengths) and return it as float64."""
    matrix = np.asarray(K, dtype=np.float64)
    if matrix.size == 9:
        matrix = matrix.reshape(3, 3)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be a finite 3x3 intrinsics matrix, got {np.asarray(K).shape}")
    if matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise ValueError(f"{name} has a non-positive focal length (fx={matrix[0, 0]}, fy={matrix[1, 1]})")
    return matrix
