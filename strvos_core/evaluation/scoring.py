"""Per-frame scoring of one expression while it streams, so no video's masks are held in memory."""
from __future__ import annotations

import numpy as np

from strvos_core.datasets.items import Scoring
from strvos_core.metrics import (
    boundary_f_per_frame,
    jaccard_per_frame,
    pixel_accuracy_per_frame,
    robustness_per_frame,
)


class ExpressionScorer:
    """Collects J, F (and ReVOS A, R) frame by frame; `summary()` gives the frame means, like the reference."""

    def __init__(self, scoring: Scoring) -> None:
        self.scoring = scoring
        self.values: dict[str, list[float]] = {"J": [], "F": []}
        if scoring == "revos":
            self.values.update(A=[], R=[])

    def add_frame(self, gt: np.ndarray, pred: np.ndarray, foreground: np.ndarray | None = None) -> None:
        pred_u8 = pred.astype(bool).astype(np.uint8)
        self.values["J"].append(float(jaccard_per_frame(gt, pred_u8)))
        self.values["F"].append(float(boundary_f_per_frame(gt, pred_u8)))
        if self.scoring == "revos":
            if foreground is None:
                raise ValueError("ReVOS robustness needs the foreground masks (mask_dict_foreground.json)")
            self.values["A"].append(float(pixel_accuracy_per_frame(gt, pred_u8)))
            self.values["R"].append(float(robustness_per_frame(gt, pred_u8, foreground)))

    def summary(self) -> dict[str, float]:
        return {name: float(np.mean(np.array(v, dtype=np.float64))) for name, v in self.values.items() if v}
