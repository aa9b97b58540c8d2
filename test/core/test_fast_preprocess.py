"""The table-driven preprocessing is bit-identical to the reference's per-tile ToTensor + Normalize.

The reference (and our first implementation) normalised every PIL tile crop with float32 torch ops:
x.float() / 255, then (x - mean) / std. `processing.image` now slices the resized frame once and looks values
up in a 256-entry table per channel; these tests recompute the slow way and demand exact equality.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from strvos_core.processing.image import IMAGENET_MEAN, IMAGENET_STD, llm_tiles, sam2_image
from strvos_core.processing.tiling import tile_image


def normalise_like_reference(pixels: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return (tensor - mean[:, None, None]) / std[:, None, None]


def every_value_frame(height: int, width: int, seed: int) -> np.ndarray:
    """A random frame whose top rows hold all 256 values in every channel (so every table entry is checked)."""
    frame = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    ramp = np.arange(256, dtype=np.uint8)
    flat = frame.reshape(-1, 3)
    flat[:256] = np.stack([ramp, ramp[::-1], np.roll(ramp, 77)], axis=1)
    return frame


@pytest.mark.parametrize("size,max_tiles,thumbnail", [
    ((240, 320), 12, True),    # 4:3 -> 12 tiles + thumbnail
    ((97, 301), 12, True),     # odd sizes, wide grid
    ((240, 320), 12, False),   # no thumbnail
    ((240, 320), 1, True),     # one tile (the tiny preset): no thumbnail
    ((500, 90), 6, True),      # tall grid
])
def test_llm_tiles_equal_per_tile_normalisation(size, max_tiles, thumbnail):
    frame = every_value_frame(*size, seed=size[0])
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    views = tile_image(Image.fromarray(frame), 1, max_tiles, 448, thumbnail)
    expected = torch.stack([normalise_like_reference(np.asarray(v), mean, std) for v in views])
    got = llm_tiles(frame, 448, 1, max_tiles, thumbnail)
    assert got.dtype == torch.float32 and got.is_contiguous()
    assert torch.equal(got, expected)


@pytest.mark.parametrize("side", [128, 1024])
def test_sam2_image_equals_bf16_constant_normalisation(side):
    frame = every_value_frame(61, 83, seed=side)
    squashed = np.asarray(Image.fromarray(frame).resize((side, side)))
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.bfloat16).float()
    std = torch.tensor(IMAGENET_STD, dtype=torch.bfloat16).float()
    assert torch.equal(sam2_image(frame, side), normalise_like_reference(squashed, mean, std)[None])


def test_read_only_and_strided_frames_are_accepted():
    frame = every_value_frame(120, 200, seed=3)
    view = frame[::-1, ::2]  # negative and non-unit strides
    view.flags.writeable = False
    assert torch.equal(llm_tiles(view), llm_tiles(np.ascontiguousarray(view)))
