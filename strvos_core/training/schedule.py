"""The reference's learning-rate schedule, per optimizer step: mmengine LinearLR from `start_factor` over the
first `warmup_ratio` of the steps, then CosineAnnealingLR to 0 over the rest."""
from __future__ import annotations

import math

import torch


def lr_factor(step: int, total_steps: int, warmup_ratio: float, start_factor: float) -> float:
    """Multiplier of the base lr for optimizer step `step` (0-based)."""
    warmup = int(math.ceil(warmup_ratio * total_steps))
    if step < warmup:
        return start_factor + (1.0 - start_factor) * step / warmup
    span = max(total_steps - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float,
                    start_factor: float) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_ratio, start_factor))
