"""Contour accuracy F: the DAVIS boundary F-measure used by the reference (`db_eval_boundary`).

Boundaries are 1-pixel maps (Martin et al.'s `seg2bmap`); a boundary pixel counts as matched when
the other mask's boundary lies within a disk of radius ceil(bound_th * image diagonal).
The disk is built here (same rule as `skimage.morphology.disk`) so no scikit-image is needed.
"""
from __future__ import annotations

import cv2
import numpy as np

from strvos_core.metrics.checks import as_mask_stack, check_same_shape

DEFAULT_BOUND_TH = 0.008


def disk(radius: float) -> np.ndarray:
    """Disk structuring element: pixels (x, y) with x^2 + y^2 <= radius^2, centred, uint8."""
    offsets = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(offsets, offsets)
    return ((x**2 + y**2) <= radius**2).astype(np.uint8)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary of a binary H x W mask, offset half a pixel towards the origin (seg2bmap)."""
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_radius(shape: tuple[int, int], bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Match tolerance in pixels: bound_th itself when >= 1, else a fraction of the image diagonal."""
    return float(bound_th) if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(shape)))


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary F-measure of one H x W frame (precision/recall of matched boundary pixels)."""
    pred_boundary = boundary_map(pred)
    gt_boundary = boundary_map(gt)
    kernel = disk(boundary_radius(pred.shape, bound_th))
    pred_dilated = cv2.dilate(pred_boundary.astype(np.uint8), kernel)
    gt_dilated = cv2.dilate(gt_boundary.astype(np.uint8), kernel)

    n_pred = int(pred_boundary.sum())
    n_gt = int(gt_boundary.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        # precision, recall = (1, 0) or (0, 1): F = 0
        return 0.0
    precision = float(np.sum(pred_boundary & gt_dilated.astype(bool))) / n_pred
    recall = float(np.sum(gt_boundary & pred_dilated.astype(bool))) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def boundary_f_per_frame(gt: np.ndarray, pred: np.ndarray, bound_th: float = DEFAULT_BOUND_TH) -> np.ndarray:
    """F of each frame of (T, H, W) masks (a 0-d array for one H x W frame)."""
    check_same_shape(gt, pred, "ground truth", "prediction")
    values = np.array(
        [f_measure(p, g, bound_th) for g, p in zip(as_mask_stack(gt), as_mask_stack(pred), strict=True)],
        dtype=np.float64,
    )
    return values if gt.ndim == 3 else values.reshape(())
