"""Checkpoint save/load in the reference export format: round trip and clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from strvos_core import checkpoint
from strvos_core.checkpoint import build_random_model, load_model, reference_to_ours, save_checkpoint
from strvos_core.errors import StrvosError


@pytest.fixture(scope="module")
def export_dir(tiny_backend, tmp_path_factory):
    model = tiny_backend.model
    return save_checkpoint(model, model.tokenizer, tmp_path_factory.mktemp("export") / "tiny")


def copy_export(export_dir, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(export_dir, target)
    return target


def test_reference_layout(export_dir):
    config = json.loads((export_dir / "config.json").read_text())
    assert config["model_type"] == "sa2va_chat" and config["llm_config"]["architectures"] == ["Qwen2ForCausalLM"]
    keys = load_file(str(export_dir / "model.safetensors")).keys()
    assert "vision_model.encoder.layers.0.attn.qkv.weight" in keys
    assert "vision_model.embeddings.class_embedding" in keys
    assert "grounding_encoder.sam2_model.memory_encoder.fuser.layers.0.g_weight" in keys
    assert {"mlp1.0.weight", "mlp1.3.bias", "text_hidden_fcs.2.weight", "language_model.lm_head.weight"} <= set(keys)


def test_qkv_split_matches_fused_layout():
    fused = torch.arange(12.0).reshape(6, 2)
    out = reference_to_ours({"vision_model.encoder.layers.3.attn.qkv.weight": fused})
    prefix = "vision_model.encoder.layer.3.attention."
    assert torch.equal(out[prefix + "q_proj.weight"], fused[:2])
    assert torch.equal(out[prefix + "v_proj.weight"], fused[4:])


def test_round_trip_gives_identical_outputs(tiny_backend, export_dir, random_frame, capfd):
    loaded = load_model(export_dir)
    # transformers used to warn on every load that `sa2va_chat` (the export's model type) is not its own type
    assert "model of type" not in capfd.readouterr().err
    original = tiny_backend.model
    for key, value in original.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    frame = random_frame(seed=7)
    a = original.segment(original.encode_frame(frame), "the mug", None)
    b = loaded.segment(loaded.encode_frame(frame), "the mug", None)
    assert np.array_equal(a.mask, b.mask) and a.text == b.text and a.score == b.score


def test_missing_and_misshaped_and_unexpected_weights(export_dir, tmp_path):
    state = load_file(str(export_dir / "model.safetensors"))
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "mlp1.1.weight"}, "missing"),
        "shape": ({**state, "text_hidden_fcs.2.bias": torch.zeros(7)}, "text_hidden_fcs.2.bias"),
        "extra": ({**state, "fast_pool.weight": torch.zeros(1)}, "unexpected"),
    }
    for name, (weights, message) in cases.items():
        target = copy_export(export_dir, tmp_path / name)
        save_file(weights, str(target / "model.safetensors"))
        with pytest.raises(StrvosError, match=message):
            load_model(target)


def test_corrupt_and_absent_files(export_dir, tmp_path):
    target = copy_export(export_dir, tmp_path / "corrupt")
    (target / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(StrvosError, match="cannot read the weights"):
        load_model(target)
    (target / "model.safetensors").unlink()
    with pytest.raises(StrvosError, match="no model.safetensors"):
        load_model(target)
    (target / "config.json").write_text("{ not json")
    with pytest.raises(StrvosError, match="not valid JSON"):
        load_model(target)
    (target / "config.json").unlink()
    with pytest.raises(StrvosError, match="no config.json"):
        load_model(target)
    with pytest.raises(StrvosError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(StrvosError, match="random:<preset>"):
        load_model("random:huge")


def test_default_spec_without_a_trained_model_says_what_to_do(tmp_path, monkeypatch):
    empty = tmp_path / "strvos-synthetic-tiny"
    empty.mkdir()  # a checkout where the model was not trained: the folder may exist, without config.json
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL_DIR", empty)
    with pytest.raises(StrvosError) as error:
        load_model("default")
    message = str(error.value)
    assert str(empty) in message and "no config.json" in message
    assert "bash scripts/train_tiny.sh" in message and "random:tiny" in message
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL_DIR", tmp_path / "absent")
    with pytest.raises(StrvosError, match="no config.json"):
        load_model("default")


def test_default_spec_loads_the_export_in_the_shipped_folder(tmp_path, monkeypatch, random_frame):
    built = build_random_model("tiny")
    shipped = save_checkpoint(built, built.tokenizer, tmp_path / "models" / "strvos-synthetic-tiny")
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL_DIR", shipped)
    loaded = load_model("default")
    for key, value in built.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    frame = random_frame(seed=3)
    a = built.segment(built.encode_frame(frame), "the mug", None)
    b = loaded.segment(loaded.encode_frame(frame), "the mug", None)
    assert np.array_equal(a.mask, b.mask) and a.text == b.text


def test_a_folder_named_default_is_still_a_path(tmp_path, monkeypatch, export_dir, tiny_backend):
    """Only the string `default` is the shipped model; a Path (or ./default) is a folder like any other."""
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL_DIR", tmp_path / "absent")
    shutil.copytree(export_dir, tmp_path / "default")
    monkeypatch.chdir(tmp_path)
    for spec in (Path("default"), "./default"):
        assert load_model(spec).config == tiny_backend.model.config, spec
