"""The backend/session contract on the tiny preset, end to end through the real modules."""
from __future__ import annotations

import numpy as np
import pytest

from strvos_core import backends
from strvos_core.errors import StrvosError
from strvos_core.session import STAGES


def test_registry_lists_both_backends():
    assert {"streamingrvos", "sa2va-offline"} <= set(backends.available())
    with pytest.raises(StrvosError, match="unknown backend"):
        backends.create("nope")


@pytest.mark.parametrize("shape", [(40, 40), (8, 8), (30, 60)])
def test_step_returns_masks_at_frame_size(tiny_backend, shape, random_frame):
    session = tiny_backend.start_session({"mug": "the red mug"})
    result = session.step(random_frame(*shape))
    target = result.targets["mug"]
    assert result.frame_index == 0
    assert target.mask.shape == shape and target.mask.dtype == bool
    assert target.has_seg and "[SEG]" in target.text
    assert 0.0 <= target.score <= 1.0
    assert set(result.timings) == set(STAGES)
    assert result.timings["total"] >= result.timings["llm"] > 0


def test_huge_and_grey_frames(tiny_backend, random_frame):
    session = tiny_backend.start_session("the person")
    big = np.zeros((6000, 8000, 3), np.uint8)
    assert session.step(big).targets["0"].mask.shape == (6000, 8000)
    grey = random_frame()[:, :, 0]
    assert session.step(grey).targets["0"].mask.shape == (40, 40)


def test_target_management(tiny_backend, random_frame):
    session = tiny_backend.start_session(["a cup", "a dog"])
    assert session.targets == {"0": "a cup", "1": "a dog"}
    session.step(random_frame())
    assert session.state("0") is not None
    session.add_target("0", "a cat")  # replacing restarts its state
    assert session.state("0") is None and session.state("1") is not None
    session.remove_target("1")
    assert session.targets == {"0": "a cat"}
    with pytest.raises(StrvosError):
        session.remove_target("1")
    session.step(random_frame())
    session.reset()
    assert session.state("0") is None and session.frame_index == -1
    session.clear()
    assert session.targets == {}
    assert session.step(random_frame()).targets == {}
    with pytest.raises(StrvosError):
        session.add_target("x", "   ")


def test_targets_share_the_frame_work(tiny_backend, monkeypatch, random_frame):
    model = tiny_backend.model
    calls = []
    original = model.encode_frame
    monkeypatch.setattr(model, "encode_frame", lambda *a, **k: calls.append(1) or original(*a, **k))
    frame = random_frame(seed=3)
    many = tiny_backend.start_session({"a": "the mug", "b": "the dog", "c": "the mug"}).step(frame)
    assert len(calls) == 1
    alone = tiny_backend.start_session({"a": "the mug"}).step(frame)
    assert np.array_equal(many.targets["a"].mask, alone.targets["a"].mask)
    assert np.array_equal(many.targets["a"].mask, many.targets["c"].mask)
    assert many.targets["a"].score == pytest.approx(alone.targets["a"].score, abs=1e-6)


def count_sam_encodings(model, monkeypatch) -> list:
    encoder = model.grounding_encoder
    calls: list = []
    original = encoder.encode_image
    monkeypatch.setattr(encoder, "encode_image", lambda x: calls.append(1) or original(x))
    return calls


def test_sam2_image_encoder_runs_only_when_a_target_emits_seg(steered, monkeypatch, random_frame):
    """Frames without [SEG] skip SAM 2's image encoder (as the reference); with [SEG] it runs once per frame,
    whatever the number of targets."""
    from strvos_core.modeling.steering import steer_answer
    from strvos_core.session import StreamingSession

    calls = count_sam_encodings(steered, monkeypatch)
    session = StreamingSession(steered, {"a": "the mug", "b": "the dog", "c": "the cat"})
    result = session.step(random_frame(seed=1))
    assert len(calls) == 1 and all(t.has_seg for t in result.targets.values())
    assert result.timings["sam2"] > 0
    steer_answer(steered.language_model, steered.tokenizer, "none")
    result = session.step(random_frame(seed=2))
    assert len(calls) == 1 and not any(t.has_seg or t.mask.any() for t in result.targets.values())
    assert result.timings["sam2"] == 0.0
    assert steered.encode_frame(random_frame(seed=2)).sam_encoded is False


def test_segment_image(tiny_backend, random_frame):
    result = tiny_backend.segment_image(random_frame(20, 20)[:, :, ::-1], "the cup", color_order="bgr")
    assert result.mask.shape == (20, 20) and result.expression == "the cup"
    model = tiny_backend.model
    assert any(key[2] == "image" and key[0] == "the cup" for key in model._prompt_cache)  # RefCOCO's question


def test_released_backend_is_unusable(random_frame):
    backend = backends.create("streamingrvos", model="random:tiny:none")
    assert not backend.segment_image(random_frame(), "the cup").has_seg
    backend.release()
    with pytest.raises(StrvosError, match="released"):
        backend.start_session("x")


def test_offline_baseline_reprocesses_the_clip(tiny_backend, random_frame, monkeypatch):
    from strvos_core.backends.offline import OfflineSa2VASession

    session = OfflineSa2VASession(tiny_backend.model, {"t": "the mug"})
    encoder = tiny_backend.model.grounding_encoder
    calls = []
    original = encoder.encode_image
    monkeypatch.setattr(encoder, "encode_image", lambda x: calls.append(1) or original(x))
    for seed in range(3):
        result = session.step(random_frame(seed=seed))
        assert result.targets["t"].mask.shape == (40, 40)
    assert len(calls) == 1 + 2 + 3  # SAM 2 re-encodes the whole clip at every step
