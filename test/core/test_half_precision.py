"""bfloat16 and float16 runs of the shipped model on the CPU (`--dtype`): they used to fail inside SAM 2's
LayerNorm (float32 positional encodings meeting half-precision weights)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strvos_core import backends
from strvos_core.datasets.synthetic import SyntheticConfig, generate_video


@pytest.fixture(scope="module")
def video():
    return generate_video(3, SyntheticConfig(width=320, height=240, num_frames=8))


def _stream(dtype: str, video, frames: int = 3):
    backend = backends.create("streamingrvos", model="default", dtype=dtype)
    session = backend.start_session({"t": video.expressions[0].text})
    return backend.model, [session.step(video.frames[i]).targets["t"] for i in range(frames)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_streams_like_float32_on_cpu(dtype, video):
    model, half = _stream(dtype, video)
    _, full = _stream("float32", video)
    assert model.dtype == getattr(torch, dtype)
    norms = [m for m in model.grounding_encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    for a, b in zip(half, full, strict=True):
        assert a.text == b.text and a.has_seg
        assert a.mask.shape == (240, 320) and a.mask.any()
        iou = np.logical_and(a.mask, b.mask).sum() / np.logical_or(a.mask, b.mask).sum()
        assert iou > 0.9, f"{dtype} mask IoU with float32: {iou:.3f}"
        assert abs(a.score - b.score) < 0.05
