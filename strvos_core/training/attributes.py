"""A training-only attribute head (loss.attribute_weight; never exported): which object attributes each image cell holds.

From random weights, the mask decoder can only follow a language token if the image features it attends to say
what is where; learned from masks alone, they first learn "object here" and the decoder settles on the most
salient object before the features can tell a red circle from a blue square. The synthetic world knows every
object's size, colour, texture and shape, so the features are told directly: per cell of a feature grid
(SAM 2's image embedding, the LLM's image tokens), a linear head predicts, for each attribute, the share of the
cell covered by each value (plus background): soft cross-entropy against area fractions.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from strvos_core.datasets.synthetic.expressions import parse_expression
from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTE_VALUES, ATTRIBUTES

# one class per value of each attribute, plus "background" (no object) at the end of each group
GROUP_SIZES: tuple[int, ...] = tuple(len(ATTRIBUTE_VALUES[a]) + 1 for a in ATTRIBUTES)


def object_shares(labels: np.ndarray, known, grid: tuple[int, int]) -> tuple[list[int], torch.Tensor]:
    """[H, W] object-id image -> (the ids in view that `known` holds, [objects, cells] each one's area share of
    every cell of a `grid` (rows, cols) laid over the whole image, row-major). A frame with no such object in view
    (objects leave the frame in videos) has no rows."""
    ids = [int(i) for i in np.unique(labels) if i != 0 and int(i) in known]
    masks = torch.from_numpy(np.stack([labels == i for i in ids]).astype(np.float32)) if ids \
        else torch.zeros(0, *labels.shape)
    return ids, F.adaptive_avg_pool2d(masks[None], grid)[0].reshape(len(ids), grid[0] * grid[1])


def attribute_targets(labels: np.ndarray, attributes: dict[int, dict[str, str]], grid: tuple[int, int]) -> torch.Tensor:
    """[H, W] object-id image and id -> attributes -> [cells, sum(GROUP_SIZES)] area fractions per group (each
    group sums to 1 per cell), cells in row-major order of a `grid` (rows, cols) laid over the whole image."""
    ids, shares = object_shares(labels, attributes, grid)
    groups = []
    for attribute in ATTRIBUTES:
        values = ATTRIBUTE_VALUES[attribute]
        target = torch.zeros(shares.shape[1], len(values) + 1)
        for row, obj_id in enumerate(ids):
            target[:, values.index(attributes[obj_id][attribute])] += shares[row]
        target[:, -1] = (1.0 - target[:, :-1].sum(dim=1)).clamp_min(0.0)
        groups.append(target)
    return torch.cat(groups, dim=1)


def said_attributes(expression: str) -> torch.Tensor:
    """[groups] per attribute, the index of the value the expression names for its target (the noun phrase before
    any relation or motion), or the group's last class ("not said"): loss.seg_attribute_weight's target."""
    try:
        said = dict(parse_expression(expression).attributes)
    except ValueError as error:
        raise ValueError(f"loss.seg_attribute_weight needs synthetic expressions: {error}") from None
    return torch.tensor([ATTRIBUTE_VALUES[a].index(said[a]) if a in said else len(ATTRIBUTE_VALUES[a])
                         for a in ATTRIBUTES])


def said_attribute_loss(logits: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """[sum(GROUP_SIZES)] logits of one state and `said_attributes` -> cross-entropy summed over the groups."""
    parts = torch.split(logits.float(), GROUP_SIZES)
    return sum(F.cross_entropy(part[None], goal[i:i + 1].to(part.device)) for i, part in enumerate(parts))


def cell_centres(grid: tuple[int, int]) -> torch.Tensor:
    """[rows * cols, 2] (x, y) centres of a grid's cells in [-1, 1], row-major."""
    rows, cols = grid
    ys, xs = torch.meshgrid((torch.arange(rows) + 0.5) / rows, (torch.arange(cols) + 0.5) / cols, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1) * 2 - 1


class AttributeHead(nn.Module):
    """Linear per-cell classifier over every attribute group; with `position`, also a linear regression of the
    cell's own centre (the LLM's image tokens: what the [SEG] attention retrieves must say where it is)."""

    def __init__(self, dim: int, position: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, sum(GROUP_SIZES))
        self.position = nn.Linear(dim, 2) if position else None

    def loss(self, cells: torch.Tensor, targets: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """[cells, dim] features and `attribute_targets` -> soft cross-entropy summed over groups, mean over cells
        (+ the MSE of the cell centres, `grid` row-major, when the head regresses positions)."""
        logits = self.linear(cells.float())
        total = cells.new_zeros((), dtype=torch.float32)
        if self.position is not None:
            total = total + F.mse_loss(self.position(cells.float()), cell_centres(grid).to(cells.device))
        start = 0
        for size in GROUP_SIZES:
            part = slice(start, start + size)
            total = total + -(targets[:, part] * logits[:, part].log_softmax(dim=1)).sum(dim=1).mean()
            start += size
        return total


def object_cell_loss(logits: torch.Tensor, targets: torch.Tensor,
                     group_sizes: tuple[int, ...] = GROUP_SIZES) -> torch.Tensor:
    """[cells, sum(group_sizes)] head logits and their targets (`attribute_targets`; each group's background last)
    -> per group, the cross-entropy over the values (background left out) on the cells whose background share is
    below one half, summed over the groups."""
    total, start = logits.new_zeros(()), 0
    for size in group_sizes:
        keep = targets[:, start + size - 1] < 0.5
        if keep.any():
            values = slice(start, start + size - 1)
            total = total + F.cross_entropy(logits[keep, values], targets[keep, values].argmax(dim=1))
        start += size
    return total


CANDIDATE_GRID = 8  # cells per side of loss.state_candidates_weight's map (squashed to the frame's aspect)


def candidate_map(expression: str, labels: np.ndarray, attributes: dict[int, dict[str, str]]) -> torch.Tensor:
    """[CANDIDATE_GRID ** 2] each cell's share covered by the objects the expression's noun phrase describes (the
    target and every other object its words fit), row-major: loss.state_candidates_weight's target."""
    try:
        said = dict(parse_expression(expression).attributes)
    except ValueError as error:
        raise ValueError(f"loss.state_candidates_weight needs synthetic expressions: {error}") from None
    ids = [obj_id for obj_id, own in attributes.items() if all(own.get(k) == v for k, v in said.items())]
    covered = torch.from_numpy(np.isin(labels, ids).astype(np.float32))[None, None]
    return F.adaptive_avg_pool2d(covered, (CANDIDATE_GRID, CANDIDATE_GRID)).flatten()
