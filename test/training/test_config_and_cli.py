"""Training configs: the shipped YAML files parse, bad values are named, `strvos train` runs and resumes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml

from strvos_core.cli.main import main
from strvos_core.errors import StrvosError
from strvos_core.training import TrainConfig
from strvos_core.training.build import model_config

TRAIN_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
CONFIGS = sorted(TRAIN_CONFIGS.rglob("*.yaml"))  # the experiment folders (state/, motion/) too


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(TRAIN_CONFIGS)) for p in CONFIGS])
def test_shipped_configs_parse(path):
    config = TrainConfig.from_yaml(path)
    assert model_config(config.model, 500).language.vocab_size == 500


def test_defaults_are_the_reference_recipe():
    c = TrainConfig()
    assert (c.lora.rank, c.lora.alpha, c.lora.dropout) == (128, 256.0, 0.05)
    assert (c.loss.lm_weight, c.loss.bce_weight, c.loss.dice_weight, c.loss.num_points) == (1.0, 2.0, 0.5, 12544)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.grad_clip) == (4e-5, 0.05, 1.0)
    assert (c.trainable.vision, c.trainable.llm, c.trainable.sam2_mask_decoder) == ("frozen", "lora", "full")


@pytest.mark.parametrize(("data", "message"), [
    ({"optim": {"lr": -1}}, "lr > 0"),
    ({"trainable": {"llm": "half"}}, "trainable.llm"),
    ({"data": {"stage": "audio"}}, "data.stage"),
    ({"data": {"answers": ["Sure."]}}, "exactly one \\[SEG\\]"),
    ({"data": {"clip_frames": 50}}, "clip_frames"),
    ({"data": {"clip_max_gap": -1}}, "clip_max_gap"),
    ({"optimizer": {}}, "unknown sections"),
    ({"loss": {"weight": 1}}, "unknown keys \\['weight'\\]"),
    ({"model": {"overrides": {"vision": {"depth": 3}}}}, "model.overrides.vision"),
    ({"loss": {"mask_target": "bilinear"}}, "loss.mask_target"),
    ({"optim": {"lr_scales": {"sam2_image_encoder": 0}}}, "optim.lr_scales"),
    ({"data": {"box_fraction": 1.5}}, "box_fraction"),
    ({"model": {"decoder_attention_init": -1.0}}, "decoder_attention_init"),
    ({"model": {"vision_position_init": 0.0}}, "vision_position_init"),
])
def test_bad_values_are_named(data, message):
    with pytest.raises(StrvosError, match=message):
        config = TrainConfig.from_dict(data)
        model_config(config.model, 100)


def test_cli_train_then_resume_with_a_changed_config_is_refused(micro_config, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(micro_config(run={"steps": 1}).to_dict()))))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "step 1: loss" in capsys.readouterr().out
    changed = yaml.safe_load(path.read_text())
    changed["lora"]["rank"] = 2
    path.write_text(yaml.safe_dump(changed))
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "differs from the one the run started with in ['lora']" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_tiny_synthetic_model_exports_and_streams(tmp_path):
    """The shipped tiny config builds, survives the export format (trunk overrides, one tile) and streams."""
    import numpy as np

    from strvos_core.checkpoint import load_model, save_checkpoint
    from strvos_core.training.build import build_model

    config = TrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny_synthetic.yaml")
    model = build_model(config.model)
    save_checkpoint(model, model.tokenizer, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.config == model.config and loaded.frame_tiles(320, 240) == 1
    assert len(loaded.tokenizer) == loaded.config.language.vocab_size
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    features = loaded.encode_frame(frame)
    assert features.image_tokens.shape == (36, 256)
    assert features.sam.image_embed.shape[-2:] == (10, 10)  # 160 px / 16


def test_cli_train_stops_at_its_time_box_with_a_checkpoint_and_takes_a_device(micro_config, tmp_path, capsys):
    """--max-minutes (a lent GPU's time box) ends after the first step past it, with a checkpoint to resume from;
    --device overrides run.device, and --resume accepts it (the run section may differ)."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(micro_config(run={"steps": 5, "save_every": 5}).to_dict()))))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--no-progress", "--max-minutes", "1e-6",
                 "--device", "cpu"]) == 0
    assert "step 1: loss" in capsys.readouterr().out
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_000001"]
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "step 5: loss" in capsys.readouterr().out
    assert main(["train", "--config", str(path), "--out", str(out), "--max-minutes", "0"]) == 2
    assert "--max-minutes" in capsys.readouterr().err


def test_stage1_config_starts_from_the_committed_stage0_sam2_and_stage_v_vision():
    """configs/train/tiny_stage1.yaml names artifacts/tiny_stage0's SAM 2 and artifacts/tiny_vision's conv trunk:
    each file must exist, fit the config and be what the build holds afterwards (a stale or mismatched artifact
    fails here, not hours into a run)."""
    from safetensors.torch import load_file

    from strvos_core.training.build import build_model

    root = Path(__file__).resolve().parents[2]
    config = TrainConfig.from_yaml(root / "configs" / "train" / "tiny_stage1.yaml")
    artifacts = [root / config.model.grounding_init, root / config.model.vision_init]
    model = build_model(dataclasses.replace(config.model, grounding_init=str(artifacts[0]),
                                            vision_init=str(artifacts[1])))
    state = model.state_dict()
    for artifact in artifacts:
        saved = load_file(str(artifact))
        assert saved and all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in saved.items()), artifact
