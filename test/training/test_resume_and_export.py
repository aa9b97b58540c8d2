"""A run stopped after step 1 and resumed logs exactly the losses of an uninterrupted run (bit for bit); its export (LoRA merged) loads
through checkpoint.load_model and computes what the training checkpoint computes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from strvos_core.checkpoint import load_model
from strvos_core.cli.main import main
from strvos_core.errors import StrvosError
from strvos_core.training import checkpointing, train
from strvos_core.training.data import prepare_frame
from strvos_core.training.forward import TrainingModel
from strvos_core.training.trainer import _truncate_log


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resume_continues_identically_and_export_round_trips(micro_config, tmp_path):
    config = micro_config(run={"steps": 2})
    straight = train(config, tmp_path / "straight", progress=False)
    stopped = train(config, tmp_path / "resumed", stop_after=1, progress=False)
    assert stopped.steps_done == 1 and [c.name for c in checkpointing.list_checkpoints(tmp_path / "resumed")] == [
        "step_000001"]
    with pytest.raises(StrvosError, match="--resume"):
        train(config, tmp_path / "resumed", progress=False)
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.steps_done == 2
    a, b = _log(straight.log_path), _log(resumed.log_path)
    assert [r["step"] for r in b] == [1, 2]
    for key in ("loss", "lm", "bce", "dice", "lr", "grad_norm"):
        assert [r[key] for r in a] == [r[key] for r in b], key

    # export through the CLI; the LoRA update is non-zero, so merging matters
    trained = checkpointing.load_model(resumed.last_checkpoint)
    lora_b = [p for n, p in trained.named_parameters() if n.endswith("lora_B")]
    assert lora_b and any(float(p.detach().abs().max()) > 0 for p in lora_b)
    export = tmp_path / "export"
    assert main(["convert", "--checkpoint", str(tmp_path / "resumed"), "--out", str(export)]) == 0
    exported = load_model(export)
    assert not any("lora" in k for k in exported.state_dict())
    assert exported.config == trained.config  # incl. max_dynamic_patch and the SAM 2 trunk overrides
    assert exported.config.grounding.sam2_overrides["image_encoder.trunk.embed_dim"] == 32
    assert exported.config.max_dynamic_patch == 1

    frame = np.random.default_rng(5).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    prepared = prepare_frame(frame, np.zeros((64, 96), dtype=bool), trained.config)
    outs = []
    for model in (trained, exported):
        runner = TrainingModel(model, config.loss)
        with torch.no_grad():
            outs.append(runner.frame_forward(prepared, "the red circle", runner.answer_ids("Sure, [SEG]."), None))
    torch.testing.assert_close(outs[0].seg_hidden, outs[1].seg_hidden, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(outs[0].low_res_logits, outs[1].low_res_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(outs[0].lm_loss_sum, outs[1].lm_loss_sum, atol=1e-4, rtol=1e-4)
    greedy = [m.segment(m.encode_frame(frame), "the red circle", None) for m in (trained, exported)]
    assert greedy[0].text == greedy[1].text and np.array_equal(greedy[0].mask, greedy[1].mask)


def test_resume_before_the_first_checkpoint_starts_from_step_0(micro_config, tmp_path, capsys):
    """`strvos train --resume` after a SIGKILL before the first save: what the killed run left (its config, a log
    record, no checkpoint) is started over with a line saying so, and gives the uninterrupted run's losses."""
    config = micro_config(run={"steps": 1})
    straight = train(config, tmp_path / "straight", progress=False)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "train_config.json").write_text(json.dumps(config.to_dict()))
    (killed / "log.jsonl").write_text(json.dumps({"step": 1, "loss": 99.0}) + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config.to_dict()))))
    capsys.readouterr()
    assert main(["train", "--config", str(path), "--out", str(killed), "--resume", "--no-progress"]) == 0
    assert f"--resume: no checkpoint under {killed / 'checkpoints'} yet; starting from step 0" in capsys.readouterr().err
    a, b = _log(straight.log_path), _log(killed / "log.jsonl")
    assert [r["step"] for r in b] == [1]
    for key in ("loss", "lm", "bce", "dice", "lr", "grad_norm"):
        assert [r[key] for r in a] == [r[key] for r in b], key


def test_the_log_is_cut_back_by_write_then_rename(tmp_path):
    """Cutting log.jsonl back to the checkpoint's step replaces the file whole: a reader (or a kill) in the middle
    sees the old log or the new one, never a truncated one."""
    log = tmp_path / "log.jsonl"
    records = [json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in (1, 2, 3, 4)]
    log.write_text("".join(records))
    with log.open() as before:
        _truncate_log(log, 2)
        assert before.read() == "".join(records)  # the old file was not rewritten in place
    assert log.read_text() == "".join(records[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]  # no partial file left


def test_convert_names_a_bad_checkpoint(tmp_path, capsys):
    assert main(["convert", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "neither a training checkpoint" in capsys.readouterr().err


def test_from_scratch_losses_resume_identically_with_the_training_only_heads(micro_config, tmp_path):
    """The from-scratch aids (clicks, [SEG] click distillation, word head, teacher, attribute heads, [SEG] attention
    and position, lm_head-only LM loss, dense masks) resume bit-exactly: the training-only heads are saved with the
    checkpoint, and they never reach the export."""
    config = micro_config(run={"steps": 2}, model={"embedding_std": 0.5, "prompt_std": 0.15},
                          loss={"seg_words_weight": 1.0, "seg_click_weight": 1.0, "lm_backbone_grad": False,
                                "point_sampling": False, "teacher_weight": 1.0, "teacher_distill_weight": 1.0,
                                "attribute_weight": 1.0, "seg_attention_weight": 1.0, "seg_position_weight": 1.0},
                          data={"clicks_per_frame": 1, "expressions_per_sample": 2})
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "resumed", stop_after=1, progress=False)
    assert (checkpointing.list_checkpoints(tmp_path / "resumed")[0] / "training_head.pt").exists()
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    a, b = _log(straight.log_path), _log(resumed.log_path)
    for key in ("loss", "seg_words", "seg_click", "click", "dice", "grad_norm", "teacher", "distill", "attributes",
                "seg_attention", "seg_position"):
        assert [r[key] for r in a] == [r[key] for r in b], key
    export = tmp_path / "export"
    assert main(["convert", "--checkpoint", str(tmp_path / "resumed"), "--out", str(export), "--dtype", "float16"]) == 0
    exported = load_model(export).state_dict()
    assert not any(name in k for k in exported for name in ("word_head", "teacher", "attributes", "seg_position"))


def test_convert_writes_the_radius_and_refuses_a_negative_one(micro_config, tmp_path, capsys):
    train(micro_config(run={"steps": 1}), tmp_path / "run", progress=False)
    out = tmp_path / "export"
    assert main(["convert", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--mask-refine-radius", "6"]) == 0
    assert load_model(out).config.grounding.mask_refine_radius == 6
    assert main(["convert", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--mask-refine-radius",
                 "-1"]) == 2
    assert "mask_refine_radius" in capsys.readouterr().err
