"""The sanity baseline of the click probe: a plain conv U-Net, given the click as an input channel.

Same data (the probe's synthetic pool), same SAM 2 input (the frame squashed to `image_size`), same output (three
candidate logits maps at image_size / 4, upsampled bilinearly to the frame), same loss (the best of the three
candidates, BCE + Dice) and same scoring as SAM 2 in `click_probe`. If this network learns to select the clicked
object and SAM 2 does not, the data and the probe are sound and the gap is in how SAM 2 is built or trained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from strvos_core.modeling.conv_trunk import conv_block


class ClickUNet(nn.Module):
    """RGB + a Gaussian click map -> three candidate masks at 1/4 of the input size (SAM 2's low-res logits), or
    at the input size (`full_resolution`: tells whether the data allow more than SAM 2's logits grid does).

    Five encoder levels (1, 1/2, ..., 1/16 of the input: the deepest sees a whole 25-55 px object), decoder levels
    back up to 1/4 (or 1)."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128, 128), click_sigma: float = 3.0,
                 full_resolution: bool = False) -> None:
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"ClickUNet needs 5 channel widths, got {channels}")
        self.click_sigma = click_sigma
        self.encoder = nn.ModuleList([conv_block(4, channels[0])]
                                     + [conv_block(channels[i], channels[i + 1]) for i in range(4)])
        levels = 4 if full_resolution else 2
        self.decoder = nn.ModuleList([conv_block(channels[4 - i] + channels[3 - i], channels[3 - i])
                                      for i in range(levels)])
        self.head = nn.Conv2d(channels[4 - levels], 3, 1)

    def click_maps(self, points: torch.Tensor, size: int) -> torch.Tensor:
        """[N, 2] (x, y) pixels of the input -> [N, 1, size, size] Gaussian bumps at the pixel centres."""
        centres = torch.arange(size, dtype=torch.float32, device=points.device) + 0.5
        dx = (centres[None, :] - points[:, 0:1]) ** 2  # [N, W]
        dy = (centres[None, :] - points[:, 1:2]) ** 2  # [N, H]
        return torch.exp(-(dy[:, :, None] + dx[:, None, :]) / (2 * self.click_sigma ** 2))[:, None]

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """[1, 3, S, S] normalised image, [N, 2] clicks -> [N, 3, S/4, S/4] (or [N, 3, S, S]) candidate logits."""
        size = image.shape[-1]
        x = torch.cat([image.expand(len(points), -1, -1, -1), self.click_maps(points.float(), size)], dim=1)
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips[-1]
        for block, skip in zip(self.decoder, skips[-2::-1], strict=False):
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], dim=1))
        return self.head(x)
