"""Mimetic initialisation of SAM 2's mask-decoder attention, for training it from random weights.

With PyTorch's default init the query and key projections are independent random matrices, so q . k carries no
preference at all: a click's positional encoding does not favour the image tokens at its own position, and the
decoder must discover that alignment through products of random projections while its loss is already low for
"every object" masks. Measured here (training/README.md): from that init the decoder learned "every object" and not
"the clicked one", even on perfect per-object features. Starting the query and key projections as one shared
orthonormal projection P (W_q = W_k = s P, zero biases) makes q . k = s^2 (x + pe)^T P^T P (x' + pe') a similarity of
content and position from the first step: tokens attend to their own position and to look-alike tokens. This follows
Trockman & Kolter, "Mimetic Initialization of Self-Attention Layers" (ICML 2023), who start W_q W_k^T near the
identity for the same reason (attention that imitates a pretrained one's locality).
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def mimetic_attention_init(module: nn.Module, scale: float = 1.0) -> int:
    """Re-draw q_proj / k_proj of every attention block under `module` (anything with q_proj, k_proj of equal shape)
    as `scale` x one orthonormal projection each (torch's global RNG: seed it first). Returns how many were set."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    count = 0
    for block in module.modules():
        q, k = getattr(block, "q_proj", None), getattr(block, "k_proj", None)
        if not isinstance(q, nn.Linear) or not isinstance(k, nn.Linear) or q.weight.shape != k.weight.shape:
            continue
        inner, width = q.weight.shape
        basis = torch.linalg.qr(torch.randn(max(width, inner), min(width, inner)))[0]  # orthonormal columns
        projection = basis.T if inner <= width else basis  # [inner, width]: orthonormal rows (or columns)
        for linear in (q, k):
            linear.weight.copy_(projection.to(linear.weight.dtype) * scale)
            if linear.bias is not None:
                linear.bias.zero_()
        count += 1
    return count
