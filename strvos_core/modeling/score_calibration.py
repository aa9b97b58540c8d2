"""The score map of `grounding.score_calibration` (ours): a target's raw score (SAM 2's predicted IoU times its object
score) to sigmoid(a * logit(raw) + b), fitted by `evaluation/score_calibration.py` to the chance that the mask has
J >= 0.5. Monotone for a > 0, so it moves where a threshold cuts, never the order of scores."""
from __future__ import annotations

import numpy as np

EPS = 1e-4  # raw scores are clipped to [EPS, 1 - EPS] before their logit (a raw 0 or 1 stays finite)


def score_logit(raw: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(raw, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def calibrate(raw: np.ndarray | float, calibration: tuple[float, float]) -> np.ndarray:
    """sigmoid(a * logit(raw) + b), elementwise."""
    a, b = calibration
    return 1.0 / (1.0 + np.exp(-(a * score_logit(raw) + b)))
