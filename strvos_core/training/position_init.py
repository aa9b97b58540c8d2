"""A 2D sine-cosine start for the ViT's absolute position embeddings, for training the embedded model from scratch.

transformers initialises InternViT's position embeddings to zero (the released weights have them learned). From
zero, a small ViT trained on our frames stays nearly a bag of patches: it learns what is in each patch (colour,
texture) but not how neighbouring patches fit together (shape), measured with `training.attribute_probe`. MAE and
SAM start their ViTs from a fixed 2D sine-cosine table; here it is only the starting value of the same parameter, so
the architecture and the checkpoint format do not change.
"""
from __future__ import annotations

import torch


def sincos_table(side: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """[side * side, dim] row-major: the first half of the channels encodes the row, the second the column, each as
    sines then cosines of dim / 4 frequencies (dim must be a multiple of 4)."""
    if dim % 4:
        raise ValueError(f"a 2D sine-cosine table needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / temperature ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                                indexing="ij")
    parts = []
    for axis in (rows.flatten(), cols.flatten()):
        angles = axis[:, None] * omega[None]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1).float()


def init_vision_positions(vision_model: torch.nn.Module, rms: float) -> None:
    """Writes the sine-cosine table, scaled to root-mean-square `rms`, over the patch positions of an InternViT's
    position embeddings ([1, 1 + patches, C]); the class token's position stays zero."""
    table = vision_model.embeddings.position_embeddings
    patches, dim = table.shape[1] - 1, table.shape[2]
    side = int(round(patches ** 0.5))
    if side * side != patches:
        raise ValueError(f"position embeddings of {patches} patches do not form a square grid")
    values = sincos_table(side, dim)
    with torch.no_grad():
        table[0, 1:] = values * (rms / values.pow(2).mean().sqrt())
        table[0, 0] = 0.0
