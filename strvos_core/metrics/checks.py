"""Input checks shared by the metrics: clear errors instead of numpy broadcasting surprises."""
from __future__ import annotations

import numpy as np


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        raise ValueError(f"{name_a} and {name_b} must be numpy arrays, got {type(a).__name__}, {type(b).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"{name_a} shape {a.shape} does not match {name_b} shape {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"masks must be H x W or T x H x W, got shape {a.shape}")


def as_mask_stack(mask: np.ndarray) -> np.ndarray:
    """View an H x W mask as a one-frame stack; (T, H, W) passes through."""
    return mask[None] if mask.ndim == 2 else mask
