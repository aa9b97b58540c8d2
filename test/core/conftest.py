"""Shared fixtures: one tiny random StreamingRVOS backend per test session (building it takes seconds)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_backend():
    from strvos_core import backends

    backend = backends.create("streamingrvos", model="random:tiny")
    yield backend
    backend.release()


@pytest.fixture
def steered(tiny_backend):
    """The tiny backend's model; tests may re-steer its answer, restored to "[SEG]" afterwards."""
    from strvos_core.modeling.steering import steer_answer

    model = tiny_backend.model
    yield model
    steer_answer(model.language_model, model.tokenizer, "seg")


def _random_frame(height: int = 40, width: int = 40, seed: int = 0) -> np.ndarray:
    """A square frame is one 448 tile: the fastest input that still runs every stage."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def random_frame():
    return _random_frame
