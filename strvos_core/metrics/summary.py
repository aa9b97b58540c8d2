"""Per-expression J/F and the benchmark summary (J, F, J&F), as tools/eval/eval_{mevis,davis}.py."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from strvos_core.metrics.boundary import DEFAULT_BOUND_TH, boundary_f_per_frame
from strvos_core.metrics.region import jaccard_per_frame


@dataclass(frozen=True)
class ExpressionScores:
    """Scores of one (video, expression): frame means, as fractions in [0, 1]."""

    J: float
    F: float

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2


def score_expression(gt: np.ndarray, pred: np.ndarray, bound_th: float = DEFAULT_BOUND_TH) -> ExpressionScores:
    """J and F of one expression: per-frame values averaged over the video's (T, H, W) masks."""
    if gt.ndim != 3:
        raise ValueError(f"video masks must be T x H x W, got shape {gt.shape}")
    return ExpressionScores(
        J=float(jaccard_per_frame(gt, pred).mean()),
        F=float(boundary_f_per_frame(gt, pred, bound_th).mean()),
    )


def jf_summary(scores: Iterable[tuple[float, float]]) -> dict[str, float]:
    """Mean J and F over expressions (each expression weighs the same), J&F = their mean.

    Returns fractions ("J", "F", "J&F") and the reference's reported percentages, rounded to
    2 decimals ("J%", "F%", "J&F%").
    """
    pairs = list(scores)
    if not pairs:
        raise ValueError("no expressions to summarise")
    j = float(np.mean([p[0] for p in pairs]))
    f = float(np.mean([p[1] for p in pairs]))
    return {
        "J": j,
        "F": f,
        "J&F": (j + f) / 2,
        "J%": round(100 * j, 2),
        "F%": round(100 * f, 2),
        "J&F%": round(100 * (j + f) / 2, 2),
        "num_expressions": len(pairs),
    }
