"""cIoU and gIoU for referring image segmentation (RefCOCO/+/g), as the reference's RESDataset.evaluate.

Reference details kept on purpose: the ground truth of a sentence is the uint8 *sum* of its polygon
parts and only pixels equal to 1 count as foreground (its 2-class histogram ignores other values);
a per-sentence IoU is I / (U + 1e-5), or 1 when U = 0; a sentence for which the model produced no
mask (no [SEG] token) adds nothing to cIoU and 0 to gIoU, while still counting in gIoU's denominator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strvos_core.metrics.checks import check_same_shape

IGNORE_VALUE = 255


def foreground_intersection_union(pred: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    """(intersection, union) of the foreground class (value 1) of one H x W prediction and target."""
    check_same_shape(target, pred, "ground truth", "prediction")
    if pred.ndim != 2:
        raise ValueError(f"image masks must be H x W, got shape {pred.shape}")
    out = pred.astype(bool).astype(np.int64)
    tgt = target.astype(np.int64)
    out[tgt == IGNORE_VALUE] = IGNORE_VALUE
    inter = int(np.sum((out == 1) & (tgt == 1)))
    union = int(np.sum(out == 1)) + int(np.sum(tgt == 1)) - inter
    return inter, union


def sentence_iou(intersection: int, union: int) -> float:
    return 1.0 if union == 0 else intersection / (union + 1e-5)


@dataclass
class ReferringImageScores:
    """Accumulates sentences; `ciou` = sum I / sum U, `giou` = mean per-sentence IoU."""

    intersection: int = 0
    union: int = 0
    iou_sum: float = 0.0
    count: int = 0
    missing: int = 0

    def add(self, intersection: int | None, union: int | None) -> float:
        """Add one sentence; None for both means the model gave no mask. Returns its IoU."""
        self.count += 1
        if intersection is None or union is None:
            self.missing += 1
            return 0.0
        self.intersection += intersection
        self.union += union
        iou = sentence_iou(intersection, union)
        self.iou_sum += iou
        return iou

    @property
    def ciou(self) -> float:
        return self.intersection / (self.union + 1e-10)

    @property
    def giou(self) -> float:
        return self.iou_sum / self.count if self.count else float("nan")
