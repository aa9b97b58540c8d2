"""Region similarity J (Jaccard index), as in the DAVIS toolkit used by the reference (`db_eval_iou`)."""
from __future__ import annotations

import numpy as np

from strvos_core.metrics.checks import as_mask_stack, check_same_shape


def jaccard_per_frame(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of each frame of (T, H, W) (or one H x W) masks; a frame where both are empty scores 1.

    Any non-zero value counts as foreground, as `astype(bool)` does in the reference.
    """
    check_same_shape(gt, pred, "ground truth", "prediction")
    gt_b = as_mask_stack(gt).astype(bool)
    pred_b = as_mask_stack(pred).astype(bool)
    inter = np.sum(gt_b & pred_b, axis=(-2, -1))
    union = np.sum(gt_b | pred_b, axis=(-2, -1))
    j = np.ones(union.shape, dtype=np.float64)
    nonempty = union > 0
    j[nonempty] = inter[nonempty] / union[nonempty]
    return j if gt.ndim == 3 else j.reshape(())
