"""Numerical parity of strvos_core with the reference StreamingRVOS implementation.

test/fixtures/parity/ was produced by tools/parity/make_reference_fixture.py, which ran the reference
`Sa2VAChatModel.predict_forward_token` (transformers 4.42, in its own environment) on a tiny checkpoint whose every
tensor comes from tools/parity/deterministic_weights.py. Here the same checkpoint is rebuilt in the reference export
format (config.json + model.safetensors with the reference key names + tokenizer files), loaded with
strvos_core's loader, and our streaming session runs the same frames and expression. Compared per frame:
generated token ids (equal), the [SEG] post-norm hidden state carried as TIME_CONTEXT (within 1e-4, fp32) and
the final masks (identical). The fixture's [SEG] pattern covers the recurrence over 5 consecutive frames and a
frame without [SEG] (empty mask, state reset).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "test" / "fixtures" / "parity"
# sam256: SAM 2 at 256x256 input (cheap; every frame in the default suite). sam1024: the released input size (slow).
FAST_VARIANT, RELEASE_VARIANT = "sam256", "sam1024"
HIDDEN_ATOL = 1e-4
TARGET = "target"
EXPRESSION = "the red square"
# The first 4 frames must hold [SEG] -> [SEG] (recurrence) and a frame without [SEG] (reset).
FAST_FRAMES = 4


def _load_deterministic_weights():
    path = REPO_ROOT / "tools" / "parity" / "deterministic_weights.py"
    spec = importlib.util.spec_from_file_location("parity_deterministic_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dw = _load_deterministic_weights()


@dataclass
class FrameRecord:
    prompt_ids: list[int]
    generated_ids: list[int]
    state_in: torch.Tensor | None
    state_out: torch.Tensor | None
    seg_hidden: torch.Tensor
    mask: np.ndarray
    has_seg: bool


# -- fixture access --------------------------------------------------------------------------------------------
def _meta(fixture: Path) -> dict:
    return json.loads((fixture / "meta.json").read_text())


def _expected(fixture: Path) -> dict[str, np.ndarray]:
    with np.load(fixture / "expected.npz") as data:
        return {k: data[k] for k in data.files}


def _frames(fixture: Path) -> list[np.ndarray]:
    paths = sorted((fixture / "frames").glob("frame_*.png"))
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _layout(fixture: Path) -> dict:
    return json.loads((fixture / "checkpoint_layout.json").read_text())


@functools.cache
def _reference_state_dict(fixture: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the fixture's checkpoint, by reference key name: deterministic values + steered rows.
    Cached (40M values take seconds); callers must not modify it."""
    state = dw.deterministic_state_dict(_layout(fixture)["keys"])
    with np.load(fixture / "weight_overrides.npz") as overrides:
        for name in overrides.files:
            key, _, row = name.rpartition("#")
            state[key][int(row)] = torch.from_numpy(overrides[name])
    return state


def build_reference_checkpoint(fixture: Path, directory: Path) -> Path:
    """The fixture's checkpoint in the reference export layout (what convert_to_hf.py + save_pretrained write).

    The reference hard-wires SAM 2.1 hiera-large; the fixture used its hiera-tiny encoder, which our config.json
    extension ("strvos": sam2_variant, sam2_image_size) describes. max_new_tokens is the value the reference used.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    meta = _meta(fixture)
    config = json.loads((fixture / "config.json").read_text())
    config["strvos"] = {"sam2_variant": "hiera-tiny", "sam2_image_size": meta["sam2_image_size"],
                        "max_new_tokens": meta["max_new_tokens"]}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    save_file(_reference_state_dict(fixture), str(directory / "model.safetensors"), metadata={"format": "pt"})
    for path in (fixture / "tokenizer").iterdir():
        shutil.copy(path, directory / path.name)
    return directory


# -- running ours ----------------------------------------------------------------------------------------------
class DecodeRecorder:
    """Records the real greedy decoder's token ids and fed-token hidden states (the call itself is unchanged)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import strvos_core.modeling.streamingrvos as streaming

        self.calls: list = []
        original = streaming.greedy_decode

        def recording_greedy_decode(*args, **kwargs):
            out = original(*args, **kwargs)
            self.calls.append(out)
            return out

        monkeypatch.setattr(streaming, "greedy_decode", recording_greedy_decode)


def run_ours(model, frames: list[np.ndarray], recorder: DecodeRecorder) -> list[FrameRecord]:
    """Our streaming session over `frames` (one target), recording what the reference fixture records."""
    from strvos_core.session import StreamingSession

    session = StreamingSession(model, {TARGET: EXPRESSION})
    records: list[FrameRecord] = []
    for frame in frames:
        state_in = session.state(TARGET)
        result = session.step(frame).targets[TARGET]
        decoded = recorder.calls[-1]
        fed = torch.tensor(decoded.token_ids[:-1], dtype=torch.long)
        prompt = model.prompt_ids(EXPRESSION, model.frame_tiles(frame.shape[1], frame.shape[0]))
        records.append(FrameRecord(
            prompt_ids=prompt[0].tolist(), generated_ids=list(decoded.token_ids), state_in=state_in,
            state_out=session.state(TARGET), seg_hidden=decoded.fed_hidden[fed == model.token_ids.seg],
            mask=result.mask, has_seg=result.has_seg,
        ))
    return records


_models: dict[str, object] = {}


def parity_model(variant: str, tmp_path_factory):
    """Our model loaded from the rebuilt reference-format checkpoint of one fixture variant (built once)."""
    from strvos_core.checkpoint import load_model

    if variant not in _models:
        directory = build_reference_checkpoint(FIXTURES / variant, tmp_path_factory.mktemp(f"parity_{variant}"))
        _models[variant] = load_model(directory, device="cpu", dtype="float32")
    return _models[variant]


# -- comparisons -----------------------------------------------------------------------------------------------
def assert_frames_match(records: list[FrameRecord], expected: dict[str, np.ndarray]) -> None:
    for t, ours in enumerate(records):
        want_ids = [int(i) for i in expected["generated_ids"][t] if i >= 0]
        assert ours.prompt_ids == expected["prompt_ids"].tolist(), f"frame {t}: prompt token ids differ"
        assert ours.generated_ids == want_ids, f"frame {t}: generated {ours.generated_ids}, reference {want_ids}"
        count = int(expected["seg_count"][t])
        assert ours.seg_hidden.shape[0] == count, f"frame {t}: {ours.seg_hidden.shape[0]} [SEG], reference {count}"

        want_in = expected["time_context_in"][t]
        if np.isnan(want_in).all():
            assert ours.state_in is None, f"frame {t}: we carried a state, the reference used <TIME_CONTEXT>"
        else:
            assert ours.state_in is not None, f"frame {t}: the reference carried a state, we did not"
            _assert_close(ours.state_in.reshape(-1), want_in, f"frame {t}: TIME_CONTEXT input")

        if count == 1:
            _assert_close(ours.seg_hidden[0], expected["seg_hidden"][t], f"frame {t}: [SEG] hidden state")
            assert ours.state_out is not None
        else:
            assert ours.state_out is None, f"frame {t}: {count} [SEG] must reset the state"

        want_mask = expected["masks"][t]
        assert ours.mask.shape == want_mask.shape and ours.mask.dtype == np.bool_
        differing = int(np.sum(ours.mask != want_mask))
        assert differing == 0, f"frame {t}: {differing} mask pixels differ from the reference"
        if count == 0:
            assert not ours.has_seg and not ours.mask.any(), f"frame {t}: no [SEG] must give an empty mask"


def _assert_close(ours: torch.Tensor, reference: np.ndarray, what: str) -> None:
    diff = (ours.detach().float().cpu() - torch.from_numpy(reference)).abs()
    first = int(torch.argmax((diff > HIDDEN_ATOL).int())) if bool((diff > HIDDEN_ATOL).any()) else None
    assert first is None, (f"{what}: max |diff| {float(diff.max()):.3g} > {HIDDEN_ATOL}; first at index {first}: "
                           f"ours {float(ours.reshape(-1)[first]):.6g} vs reference {float(reference[first]):.6g}")


# -- tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [FAST_VARIANT, RELEASE_VARIANT])
def test_fixture_covers_the_recurrence_and_the_no_seg_case(variant):
    fixture = FIXTURES / variant
    counts = _expected(fixture)["seg_count"].tolist()
    longest = run = 0
    for count in counts:
        run = run + 1 if count == 1 else 0
        longest = max(longest, run)
    assert longest >= 5, f"[SEG] pattern {counts} has no 5 consecutive single-[SEG] frames"
    assert 0 in counts[:FAST_FRAMES] and counts[:2] == [1, 1], counts
    assert _meta(fixture)["recurrence_effect_max_abs_seg_hidden"] > 100 * HIDDEN_ATOL
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert size < 2_000_000, f"parity fixtures take {size} bytes"


def test_rebuilt_weights_are_the_reference_weights():
    """Same name -> same tensor in both environments (torch versions differ): compare the recorded fingerprints."""
    fixture = FIXTURES / FAST_VARIANT
    fingerprints = _layout(fixture)["fingerprints"]
    state = _reference_state_dict(fixture)
    assert sorted(state) == sorted(fingerprints)
    for key, tensor in state.items():
        assert dw.tensor_checksum(tensor) == pytest.approx(fingerprints[key], rel=1e-9, abs=1e-9), key


def test_checkpoint_layout_is_what_save_pretrained_writes():
    layout = _layout(FIXTURES / FAST_VARIANT)
    assert "model.safetensors" in layout["files_written_by_save_pretrained"]
    assert "config.json" in layout["files_written_by_save_pretrained"]
    assert layout["saved_keys_equal_state_dict"]


def test_prompt_tokens_match_the_reference(tmp_path_factory):
    fixture = FIXTURES / FAST_VARIANT
    model = parity_model(FAST_VARIANT, tmp_path_factory)
    frame = _frames(fixture)[0]
    tiles = model.frame_tiles(frame.shape[1], frame.shape[0])
    assert tiles == _meta(fixture)["num_tiles"]
    assert model.prompt_ids(EXPRESSION, tiles)[0].tolist() == _expected(fixture)["prompt_ids"].tolist()


@pytest.mark.parametrize("variant", [FAST_VARIANT, pytest.param(RELEASE_VARIANT, marks=pytest.mark.slow)])
def test_all_frames_match_the_reference(variant, tmp_path_factory, monkeypatch):
    """Every frame: [SEG] -> [SEG] (state carried), no [SEG] (empty mask, state reset), then 5 consecutive frames
    carrying the [SEG] state. sam256 (about 25 s here) runs by default; sam1024 (SAM 2's released size) is slow."""
    fixture = FIXTURES / variant
    model = parity_model(variant, tmp_path_factory)
    encoder = model.grounding_encoder
    encoded: list = []
    original = encoder.encode_image
    monkeypatch.setattr(encoder, "encode_image", lambda x: encoded.append(1) or original(x))
    records = run_ours(model, _frames(fixture), DecodeRecorder(monkeypatch))
    assert_frames_match(records, _expected(fixture))
    # SAM 2's image encoder ran on the frames with [SEG] only (as the reference), with the masks still identical.
    assert len(encoded) == sum(1 for count in _expected(fixture)["seg_count"] if count > 0)


def test_parity_detects_a_missing_recurrence(tmp_path_factory, monkeypatch):
    """Sanity of the fixture: frame 1 without frame 0's state (a fresh session) must visibly change its [SEG]
    state, and equal the reference's run with the recurrence disabled."""
    fixture = FIXTURES / FAST_VARIANT
    record, = run_ours(parity_model(FAST_VARIANT, tmp_path_factory), _frames(fixture)[1:2],
                       DecodeRecorder(monkeypatch))
    expected = _expected(fixture)
    diff = (record.seg_hidden[0] - torch.from_numpy(expected["seg_hidden"][1])).abs().max()
    assert float(diff) > 10 * HIDDEN_ATOL
    without = torch.from_numpy(expected["seg_hidden_without_recurrence"][1])
    assert float((record.seg_hidden[0] - without).abs().max()) <= HIDDEN_ATOL
