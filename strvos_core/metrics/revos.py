"""ReVOS extras: pixel accuracy A, robustness R, and the referring / reasoning / overall breakdown.

Kept bit-compatible with the reference (third_parts/revos/utils/metrics.py, tools/eval/eval_revos.py):
the ground truth is the *sum* of the expression's instance masks in uint8, exactly as the reference
builds it, so where instances overlap the value is 2 and A/R see it as the reference does
(A counts such pixels as wrong; R's `1 - gt` wraps around in uint8). Per-expression values are rounded
to 2 decimals (in %) before they are averaged per category, and "overall" is the mean of the two
category means, not of all expressions: both are how the published numbers were computed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from strvos_core.metrics.checks import as_mask_stack, check_same_shape

REFERRING, REASONING, NO_TARGET = 0, 1, 2


def pixel_accuracy_per_frame(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fraction of pixels where prediction equals ground truth, per frame."""
    check_same_shape(gt, pred, "ground truth", "prediction")
    gt_s, pred_s = as_mask_stack(gt), as_mask_stack(pred)
    values = np.array([np.mean(g == p) for g, p in zip(gt_s, pred_s, strict=True)], dtype=np.float64)
    return values if gt.ndim == 3 else values.reshape(())


def robustness_per_frame(gt: np.ndarray, pred: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """max(1 - |pred outside gt| / |all annotated foreground|, 0) per frame (uint8 arithmetic as the reference)."""
    check_same_shape(gt, pred, "ground truth", "prediction")
    check_same_shape(gt, foreground, "ground truth", "foreground")
    values = []
    for g, p, fg in zip(as_mask_stack(gt), as_mask_stack(pred), as_mask_stack(foreground), strict=True):
        outside_gt = np.subtract(1, g.astype(np.uint8), dtype=np.uint8)
        false_positive = (outside_gt * p.astype(np.uint8)).sum()
        values.append(max(1 - false_positive / (fg.astype(np.uint8).sum() + 1e-6), 0.0))
    result = np.array(values, dtype=np.float64)
    return result if gt.ndim == 3 else result.reshape(())


@dataclass(frozen=True)
class RevosScores:
    """Percentages (0-100) of one category."""

    J: float
    F: float
    A: float
    R: float
    JF: float

    def as_dict(self) -> dict[str, float]:
        return {"J": self.J, "F": self.F, "A": self.A, "R": self.R, "JF": self.JF}


def _percent(value: float) -> float:
    # numpy's round, on a float64, as `round(100 * j, 2)` does in the reference
    return float(round(np.float64(100 * value), 2))


def _category(rows: list[tuple[float, float, float, float]]) -> RevosScores:
    if not rows:
        nan = float("nan")
        return RevosScores(nan, nan, nan, nan, nan)
    j, f, a, r = (float(np.mean([row[k] for row in rows])) for k in range(4))
    return RevosScores(j, f, a, r, (j + f) / 2)


def revos_breakdown(items: Iterable[tuple[int, float, float, float, float]]) -> dict[str, RevosScores]:
    """Aggregate (type_id, j, f, a, r) per expression (fractions) into referring / reason / overall.

    A category without expressions gives NaN, as in the reference.
    """
    by_type: dict[int, list[tuple[float, float, float, float]]] = {REFERRING: [], REASONING: []}
    for type_id, j, f, a, r in items:
        if type_id in by_type:
            by_type[type_id].append((_percent(j), _percent(f), _percent(a), _percent(r)))
    referring = _category(by_type[REFERRING])
    reason = _category(by_type[REASONING])
    overall = RevosScores(
        *((getattr(referring, k) + getattr(reason, k)) / 2 for k in ("J", "F", "A", "R", "JF"))
    )
    return {"referring": referring, "reason": reason, "overall": overall}
