"""Training-only motion targets for the embedded model's motion cue (`vision.motion_input`; never exported).

Two heads, both from-scratch aids in the manner of attributes.py:
- `loss.motion_cell_weight`: per LLM image-token cell, which way the objects covering it moved since the frame
  before (the centre's step from frame t-1 to t: still, left, right, up, down, or background), soft shares plus a
  cross-entropy on the cells one object mostly covers. It teaches the motion encoder what the frame difference
  shows, as the attribute head taught the conv trunk shape.
- `loss.seg_motion_weight`: which motion word the expression names ("not said" where it names none), read off the
  [SEG] state entering the last layer, as `said_attributes` does for size / colour / texture / shape: the query
  must ask for the movement before the attention can match it in the keys.
"""
from __future__ import annotations

import numpy as np
import torch

from strvos_core.datasets.synthetic.expressions import parse_expression
from strvos_core.datasets.synthetic.vocabulary import MOTIONS
from strvos_core.training.attributes import object_cell_loss, object_shares

STEP_CLASSES: tuple[str, ...] = ("still", "left", "right", "up", "down")  # then "background" in the targets


def frame_steps(centres: dict[int, np.ndarray], frame: int) -> dict[int, str]:
    """Object id -> the STEP_CLASSES word of its centre's step from `frame - 1` to `frame` ({} for frame 0: no
    frame before it). The synthetic world moves objects along one axis, so the larger component decides."""
    if frame <= 0:
        return {}
    steps = {}
    for obj_id, path in centres.items():
        dx, dy = (np.asarray(path[frame], dtype=np.float64) - np.asarray(path[frame - 1], dtype=np.float64))
        if dx == 0 and dy == 0:
            steps[obj_id] = "still"
        elif abs(dx) >= abs(dy):
            steps[obj_id] = "right" if dx > 0 else "left"
        else:
            steps[obj_id] = "down" if dy > 0 else "up"
    return steps


def step_targets(labels: np.ndarray, steps: dict[int, str], grid: tuple[int, int]) -> torch.Tensor:
    """[H, W] object ids and `frame_steps` -> [cells, len(STEP_CLASSES) + 1] each cell's share covered by objects
    of each step class, background last (rows sum to 1), cells row-major over a `grid` (rows, cols)."""
    ids, shares = object_shares(labels, steps, grid)
    target = torch.zeros(grid[0] * grid[1], len(STEP_CLASSES) + 1)
    for row, obj_id in enumerate(ids):
        target[:, STEP_CLASSES.index(steps[obj_id])] += shares[row]
    target[:, -1] = (1.0 - target[:, :-1].sum(dim=1)).clamp_min(0.0)
    return target


def step_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[cells, classes + 1] logits and `step_targets` -> soft cross-entropy (mean over cells) plus the
    cross-entropy over the step classes on the cells an object covers for more than half (the background
    dominates the first)."""
    logits = logits.float()
    soft = -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()
    return soft + object_cell_loss(logits, targets, (len(STEP_CLASSES) + 1,))


def said_motion(expression: str) -> torch.Tensor:
    """[] index in MOTIONS of the motion word the expression names, len(MOTIONS) where it names none."""
    try:
        motion = parse_expression(expression).motion
    except ValueError as error:
        raise ValueError(f"loss.seg_motion_weight needs synthetic expressions: {error}") from None
    return torch.tensor(MOTIONS.index(motion) if motion else len(MOTIONS))
