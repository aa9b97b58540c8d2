"""`grounding.attention_click`: where the [SEG] token looked, as a click for SAM 2 (ours; the reference has none).

The LLM's last layer attends from the [SEG] position over the image tokens; with one whole-frame tile those tokens
form a square grid over the frame, as SAM 2's square input does. The click is the attention-weighted centre of the
peak cell and its 8 neighbours (the argmax alone snaps to a cell centre, ~28 px of a 336 px tile; the neighbours
move it toward the object's middle), in pixels of SAM 2's input. It carries no gradient: training teaches the
attention through its own loss and the decoder to use the click.
"""
from __future__ import annotations

import torch

from strvos_core.modeling.vision import token_grid_side


def seg_image_attention(row: torch.Tensor, image_slots: torch.Tensor) -> torch.Tensor:
    """[heads, keys] last-layer attention of the [SEG] row, [keys] bool image-token slots -> [image tokens], the
    heads' mean renormalised over the image tokens (what `loss.seg_attention_weight` supervises)."""
    mean = row[:, : image_slots.shape[0]].float().mean(dim=0)[image_slots]
    return mean / mean.sum().clamp_min(1e-12)


def seg_image_mass(row: torch.Tensor, image_slots: torch.Tensor) -> torch.Tensor:
    """[heads, keys] last-layer attention of the [SEG] row -> [] the share of it (the heads' mean) on the image
    tokens, before `seg_image_attention` renormalises it away (what `loss.seg_presence_weight` trains and
    `grounding.presence_gate` reads)."""
    return row[:, : image_slots.shape[0]].float().mean(dim=0)[image_slots].sum()


def attention_click(attention: torch.Tensor, image_size: int) -> torch.Tensor:
    """[side * side] attention over a whole-frame token grid (row-major) -> [2] (x, y) in pixels of SAM 2's
    `image_size` input."""
    side = token_grid_side(attention.numel(), "grounding.attention_click")
    grid = attention.detach().float().reshape(side, side)
    row, col = divmod(int(grid.argmax()), side)
    r0, r1, c0, c1 = max(row - 1, 0), min(row + 2, side), max(col - 1, 0), min(col + 2, side)
    weights = grid[r0:r1, c0:c1]
    ys = torch.arange(r0, r1, dtype=torch.float32, device=grid.device) + 0.5
    xs = torch.arange(c0, c1, dtype=torch.float32, device=grid.device) + 0.5
    total = weights.sum().clamp_min(1e-12)
    x = (weights.sum(dim=0) * xs).sum() / total
    y = (weights.sum(dim=1) * ys).sum() / total
    return torch.stack([x, y]) * (image_size / side)
