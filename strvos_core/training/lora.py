"""LoRA for nn.Linear (peft's formulation), written here because peft is not a dependency.

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,   A: [r, in] kaiming-uniform, B: [out, r] zeros

`LoRALinear` subclasses nn.Linear and keeps the base parameters under their own names (`weight`, `bias`), so
a wrapped model's state dict is the plain model's plus `lora_A`/`lora_B` entries, and `merge_lora` folds
W += (alpha / r) B A back into plain nn.Linear layers for export (as peft's merge_and_unload does).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Linear):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float) -> None:
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None,
                         device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            self.weight.copy_(base.weight)
            if base.bias is not None:
                self.bias.copy_(base.bias)
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.scaling = rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device,
                                               dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device,
                                               dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.lora_dropout(x) @ self.lora_A.t() @ self.lora_B.t()
        return super().forward(x) + update * self.scaling

    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing the same function (in eval mode)."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.weight + self.scaling * (self.lora_B @ self.lora_A))
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear


def apply_lora(module: nn.Module, targets: tuple[str, ...], rank: int, alpha: float, dropout: float) -> int:
    """Wrap every nn.Linear whose attribute name is in `targets`; returns how many were wrapped."""
    wrapped = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if name in targets and type(child) is nn.Linear:
                setattr(parent, name, LoRALinear(child, rank, alpha, dropout))
                wrapped += 1
    return wrapped


def merge_lora(module: nn.Module) -> int:
    """Replace every LoRALinear by its merged nn.Linear; returns how many were merged."""
    merged = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                merged += 1
    return merged


def has_lora(module: nn.Module) -> bool:
    return any(isinstance(m, LoRALinear) for m in module.modules())
