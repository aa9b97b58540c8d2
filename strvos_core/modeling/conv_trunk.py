"""A small conv trunk for the LLM's vision path of the embedded model, behind the same interface as InternViT.

The released models use InternViT (`vision.py`); this trunk exists for the tiny model trained from scratch on this
CPU, where a 3-layer ViT of 14 px patches learned colour and texture but never shape or size, and a conv net on the
same frames and targets did (`training.attribute_probe`, training README). It plays the part that the on-device
SAM 2 variants give a conv trunk (EdgeTAM's RepViT): a stride-2 stem, then conv blocks at 1/4, 1/8 and 1/16 of the
tile (the deepest sees a whole 25-55 px object), pooled to the LLM's token grid and widened to what `mlp1` takes
after pixel shuffle (4x the vision width), so `mlp1`, the LLM and the token count are those of the ViT it replaces.
Trained on the same per-cell targets, the two learn opposite halves: the ViT colour and texture within a few hundred
steps, the conv trunk size and shape. `vit+conv` runs both and adds the conv features to the pixel-shuffled ViT
tokens before mlp1.

With `vision.motion_input` a second conv trunk of the same design, the motion encoder, reads the tile together with
its difference from the stream's previous tile (6 channels; the difference is zero on a first frame): where an
object moved, its leading and trailing edges light up with opposite signs, so its features can say which way each
object moves. They are added to the tokens before mlp1 like the conv trunk's. One frame cannot show motion, and the
[SEG] state fed back was measured not to carry it (training README, "The streaming state, measured"); the frame
before is the smallest memory that does. (Widening the shared trunk's stem instead, its new weights zero, was measured
to learn far more slowly than a fresh encoder: training README, "Motion".)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONV_TRUNK = "conv"
INTERNVIT = "internvit"
HYBRID_TRUNK = "vit+conv"


def conv_block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3x3 convs, each followed by GroupNorm(8) and GELU (batch-size independent: training sees one frame)."""
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1), nn.GroupNorm(8, outputs), nn.GELU(),
                         nn.Conv2d(outputs, outputs, 3, padding=1), nn.GroupNorm(8, outputs), nn.GELU())


class ConvVisionTrunk(nn.Module):
    """[n, in_channels, S, S] normalised tiles (3, or `motion_pixels`' 6) -> [n, side * side, out_dim] features of
    a side x side grid over each tile."""

    def __init__(self, widths: tuple[int, ...] | list[int], side: int, out_dim: int, in_channels: int = 3) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or any(w < 8 or w % 8 for w in widths):
            raise ValueError(f"a conv trunk needs >= 2 widths, each a multiple of 8 (GroupNorm(8)), got {widths}")
        self.side = side
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1), nn.GroupNorm(8, widths[0]),
                                  nn.GELU())
        self.levels = nn.ModuleList([conv_block(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])
        self.project = nn.Conv2d(widths[-1], out_dim, 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # channels-last activations: the CPU conv kernels run faster on them (benchmarks/tiny_default_cpu.md)
        x = self.stem(pixel_values.contiguous(memory_format=torch.channels_last))
        for block in self.levels:
            x = block(F.max_pool2d(x, 2))
        x = self.project(F.adaptive_avg_pool2d(x, self.side))
        return x.flatten(2).transpose(1, 2)


def motion_pixels(pixel_values: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """[n, 3, S, S] tiles and the previous frame's (or None) -> [n, 6, S, S]: the tiles and their difference from
    the previous ones (zero without a previous frame, or when its tiling differs)."""
    if previous is None or previous.shape != pixel_values.shape:
        difference = torch.zeros_like(pixel_values)
    else:
        difference = pixel_values - previous.to(pixel_values.device, pixel_values.dtype)
    return torch.cat([pixel_values, difference], dim=1)


MOTION_CHANNELS = 6  # the tile and its difference from the previous one (`motion_pixels`)


class HybridVisionTrunk(nn.Module):
    """InternViT (`vit`, run by `vision.image_tokens` up to pixel shuffle) and a conv trunk (`conv`) side by side."""

    def __init__(self, vit: nn.Module, conv: ConvVisionTrunk) -> None:
        super().__init__()
        self.vit, self.conv = vit, conv
