"""Deterministic "random" weights computed from a tensor's name and shape alone.

Why: the parity fixture must not ship a checkpoint. Both the reference environment (torch 2.14, transformers 4.42)
and the project environment (torch 2.13, transformers 5) call `deterministic_tensor(name, shape)` and obtain
bit-identical float32 values, so each side can rebuild the same checkpoint from the committed key/shape list.
Only version-stable torch API is used: a CPU `torch.Generator` seeded from CRC-32 of the key, `torch.randn`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping

import torch

BIAS_STD = 0.02
UNIT_VECTOR_NOISE = 0.1


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def deterministic_tensor(name: str, shape: Iterable[int]) -> torch.Tensor:
    """A float32 tensor for the parameter `name`, with a scale that keeps activations of order one.

    - 1-D `...bias`: small noise (std 0.02).
    - other 1-D tensors (norm weights, layer scales): 1 + 0.1 * noise, i.e. near identity.
    - n-D tensors: noise with std 1/sqrt(fan_in), fan_in = product of all but the first dimension
      (Linear, Conv, embedding tables, learned embeddings alike).
    """
    shape = tuple(int(s) for s in shape)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(_seed(name))
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    if len(shape) <= 1:
        if name.endswith("bias"):
            return noise * BIAS_STD
        return 1.0 + UNIT_VECTOR_NOISE * noise
    fan_in = math.prod(shape[1:])
    return noise / math.sqrt(max(fan_in, 1))


def deterministic_state_dict(shapes: Mapping[str, Iterable[int]]) -> dict[str, torch.Tensor]:
    """`{name: deterministic_tensor(name, shape)}` for every entry of a key -> shape mapping."""
    return {name: deterministic_tensor(name, shape) for name, shape in shapes.items()}


def tensor_checksum(tensor: torch.Tensor) -> list[float]:
    """Small fingerprint (sum, sum of squares, first value) used to prove both sides built the same tensor."""
    flat = tensor.detach().to(torch.float64).reshape(-1)
    if flat.numel() == 0:
        return [0.0, 0.0, 0.0]
    return [float(flat.sum()), float((flat * flat).sum()), float(flat[0])]
