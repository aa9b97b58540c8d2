"""The `streamingrvos-no-state` ablation: the same model and session, with the [SEG] state never fed back.

`random:tiny` answers "[SEG]" on every frame, so the streaming backend carries a state from frame 1 on; the
ablation must instead segment each frame exactly as a fresh session segments its first frame.
"""
from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch

from strvos_core import backends
from strvos_core.backends.streaming import StreamingRVOSBackend, StreamingRVOSNoStateBackend

EXPRESSION = "the red mug left of the laptop"


@pytest.fixture(scope="module")
def no_state_backend():
    backend = backends.create("streamingrvos-no-state", model="random:tiny")
    yield backend
    backend.release()


def _record_segment_calls(model, monkeypatch) -> list[tuple[torch.Tensor | None, object]]:
    """Run the real `model.segment`, keeping each call's input state and output (to see what is fed back)."""
    calls: list[tuple[torch.Tensor | None, object]] = []
    original = model.segment

    def recording(features, expression, state, *args, **kwargs):
        out = original(features, expression, state, *args, **kwargs)
        calls.append((state, out))
        return out

    monkeypatch.setattr(model, "segment", recording)
    return calls


def test_registered_as_builtin_and_entry_point(no_state_backend):
    assert "streamingrvos-no-state" in backends.available()
    names = {ep.name: ep.value for ep in entry_points(group=backends.GROUP)}
    assert names.get("streamingrvos-no-state") == "strvos_core.backends.streaming:StreamingRVOSNoStateBackend", (
        "entry point missing: run scripts/setup.sh after editing setup.py")
    assert isinstance(no_state_backend, StreamingRVOSBackend) and type(no_state_backend) is StreamingRVOSNoStateBackend
    session = no_state_backend.start_session(EXPRESSION)
    assert session.use_state is False
    assert backends.create("streamingrvos", model="random:tiny").use_state is True


def test_every_frame_is_a_first_frame(tiny_backend, steered, no_state_backend, random_frame, monkeypatch):
    """Per frame, the ablation's output equals a fresh streaming session's first frame (same deterministic
    weights), no state is ever passed to the model, and the stateful session's [SEG] states and scores differ."""
    frames = [random_frame(seed=s) for s in (20, 21, 22, 23)]
    no_state_calls = _record_segment_calls(no_state_backend.model, monkeypatch)
    stateful_calls = _record_segment_calls(steered, monkeypatch)

    ablation = no_state_backend.start_session({"t": EXPRESSION})
    ablated = []
    for frame in frames:
        ablated.append(ablation.step(frame).targets["t"])
        assert ablation.state("t") is None
    assert [state for state, _ in no_state_calls] == [None] * len(frames)

    fresh_states = []
    for frame, result in zip(frames, ablated, strict=True):
        first = tiny_backend.start_session({"t": EXPRESSION}).step(frame).targets["t"]
        fresh_states.append(stateful_calls[-1][1].state)
        assert result.has_seg and first.has_seg and result.text == first.text
        assert torch.equal(torch.from_numpy(result.mask), torch.from_numpy(first.mask))
        assert result.score == first.score
    for (_, out), fresh in zip(no_state_calls, fresh_states, strict=True):
        torch.testing.assert_close(out.state, fresh, atol=0, rtol=0)

    stateful_calls.clear()
    streaming = tiny_backend.start_session({"t": EXPRESSION})
    streamed = [streaming.step(frame).targets["t"] for frame in frames]
    fed = [state for state, _ in stateful_calls]
    assert fed[0] is None and all(state is not None for state in fed[1:])  # the streaming backend feeds it back
    for t in range(1, len(frames)):
        assert not torch.allclose(stateful_calls[t][1].state, fresh_states[t], atol=1e-4)
        assert streamed[t].score != ablated[t].score
    assert streamed[0].score == ablated[0].score  # frame 0 is a first frame for both
