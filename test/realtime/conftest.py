"""One tiny random StreamingRVOS model for the pipeline tests (building it takes seconds), handed to each
pipeline as a backend whose release() leaves the model alive for the next test."""
from __future__ import annotations

import pytest
import torch


class SharedBackend:
    """The real backend, minus release(): pipelines under test may release it, the fixture owns it."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.model = backend.model
        self.released = 0

    def start_session(self, targets=None):
        return self.backend.start_session(targets)

    def release(self) -> None:
        self.released += 1


@pytest.fixture(scope="session")
def tiny_streaming_backend():
    from strvos_core import backends

    torch.set_num_threads(2)
    backend = backends.create("streamingrvos", model="random:tiny")
    yield backend
    backend.release()


@pytest.fixture
def backend(tiny_streaming_backend):
    from strvos_core.modeling.steering import steer_answer

    yield SharedBackend(tiny_streaming_backend)
    model = tiny_streaming_backend.model  # tests may re-steer the answer: back to "[SEG]"
    steer_answer(model.language_model, model.tokenizer, "seg")
