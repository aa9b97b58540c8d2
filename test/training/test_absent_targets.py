"""Targets out of view (data.absent_per_sample): answered without [SEG] and learned through the answer, or answered
with [SEG] and judged by SAM 2's object score (loss.object_score_weight, grounding.object_score_gate)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from strvos_core.checkpoint import build_random_model, load_model, save_checkpoint
from strvos_core.errors import StrvosError
from strvos_core.training import losses
from strvos_core.training.build import build_model, configure_trainable, set_train_mode
from strvos_core.training.data import Sample, SyntheticPool, low_res_mask
from strvos_core.training.forward import TrainingModel

ABSENT = {"absent_per_sample": 2, "absent_answer": "No.", "num_videos": 6, "expressions_per_sample": 2,
          "kinds": ["appearance", "relation", "motion"]}


def _frame_index(pool: SyntheticPool, sample: Sample) -> int:
    video = pool.video(sample.video)
    return next(i for i in range(len(video.frames)) if np.array_equal(video.frames[i], sample.frames[0]))


def _with_absent(pool: SyntheticPool, answer: str) -> list[tuple[int, Sample]]:
    """Samples (of the first 40) with a target out of view, answered `answer`."""
    return [(i, s) for i in range(40) for s in [pool.sample(0, 0, 0, i)]
            if any(t.answer == answer and not t.masks[0].any() for t in s.targets)]


def _seg_answered_absent(config):
    """A trainable micro model (eval mode: no dropout), its TrainingModel, and a sample holding targets both in and
    out of view, all answered "[SEG].": (model, trainer, sample, in-view flags)."""
    torch.manual_seed(0)
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    model.eval()
    trainer = TrainingModel(model, config.loss)
    _, sample = _with_absent(SyntheticPool(config.data), "[SEG].")[0]
    in_view = [bool(t.masks[0].any()) for t in sample.targets]
    assert not all(in_view) and any(in_view)
    return model, trainer, sample, in_view


def test_absent_targets_are_out_of_view_answered_without_seg_and_added_after_the_usual_draws(micro_config):
    config = micro_config(data=ABSENT)
    pool = SyntheticPool(config.data)
    plain = SyntheticPool(dataclasses.replace(config.data, absent_per_sample=0))
    found = _with_absent(pool, "No.")
    assert found, "no sample of 40 drew an out-of-view target"
    for index, sample in found:
        video = pool.video(sample.video)
        frame = _frame_index(pool, sample)
        texts = {text: obj for text, obj, _ in video.expressions}
        usual = plain.sample(0, 0, 0, index)  # the same draws first: configs without the option are unchanged
        assert [t.expression for t in sample.targets[: len(usual.targets)]] == [t.expression for t in usual.targets]
        extra = sample.targets[len(usual.targets):]
        assert 1 <= len(extra) <= 2 and all(t.answer == "No." for t in extra)
        for target in extra:
            assert not (video.labels[frame] == texts[target.expression]).any()
            assert not target.masks[0].any()
        assert all(t.masks[0].any() and t.answer != "No." for t in usual.targets)


def test_an_absent_target_trains_only_its_answer_and_leaves_the_others_as_they_were(micro_config):
    config = micro_config(data=ABSENT, loss={"lm_backbone_grad": True})
    torch.manual_seed(0)
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    model.eval()  # no dropout: the two forwards below must agree
    trainer = TrainingModel(model, config.loss)
    _, sample = _with_absent(SyntheticPool(config.data), "No.")[0]
    present = [k for k, t in enumerate(sample.targets) if t.answer != "No."]
    absent = [k for k, t in enumerate(sample.targets) if t.answer == "No."]
    out = trainer([sample], torch.Generator().manual_seed(0))
    frames = trainer.last_frames
    for k in absent:
        assert frames[k][0].seg_hidden is None and frames[k][0].low_res_logits is None and frames[k][0].lm_tokens > 0
    model.zero_grad()
    out["lm"].backward()  # the answer's loss reaches the LLM's layers, where text meets image
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.language_model.model.layers.parameters())
    alone = dataclasses.replace(sample, targets=[sample.targets[k] for k in present])
    with torch.no_grad():
        trainer([alone], torch.Generator().manual_seed(0))
    for k, again in zip(present, trainer.last_frames, strict=True):
        torch.testing.assert_close(again[0].seg_hidden, frames[k][0].seg_hidden.detach())
        torch.testing.assert_close(again[0].low_res_logits, frames[k][0].low_res_logits.detach())


@pytest.mark.parametrize("data", [{"stage": "video", "absent_per_sample": 1},
                                  {"absent_per_sample": 1, "absent_answer": "[SEG] [SEG]."},
                                  {"absent_per_sample": 1, "absent_answer": " "},
                                  {"absent_per_sample": -1}])
def test_absent_targets_need_single_frames_and_an_answer_with_one_seg_or_none(micro_config, data):
    with pytest.raises(StrvosError, match="absent"):
        micro_config(data=data)


def test_the_object_score_learns_what_is_in_view_and_masks_are_scored_only_there(micro_config):
    config = micro_config(data={**ABSENT, "absent_answer": "[SEG]."},
                          loss={"object_score_weight": 1.0, "point_sampling": False})
    model, trainer, sample, in_view = _seg_answered_absent(config)
    with torch.no_grad():
        out = trainer([sample], torch.Generator().manual_seed(0))
    frames = [f[0] for f in trainer.last_frames]
    scores = torch.stack([f.object_score_logit.reshape(()) for f in frames])
    torch.testing.assert_close(out["object_score"], torch.nn.functional.binary_cross_entropy_with_logits(
        scores, torch.tensor(in_view, dtype=torch.float32)))
    kept = [k for k, v in enumerate(in_view) if v]
    bce, dice = losses.mask_losses(torch.cat([frames[k].low_res_logits for k in kept]),
                                   torch.stack([low_res_mask(sample.targets[k].masks[0], model.config,
                                                             config.loss.mask_target) for k in kept]),
                                   config.loss)
    torch.testing.assert_close(out["bce"], bce)
    torch.testing.assert_close(out["dice"], dice)


@pytest.mark.parametrize("logit_bias", [50.0, -50.0])
def test_the_gate_empties_a_mask_only_where_the_object_score_says_out_of_view(logit_bias):
    model = build_random_model("tiny", answer="seg")
    head = model.grounding_encoder.sam2_model.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():
        head.layers[-1].weight.zero_()
        head.layers[-1].bias.fill_(logit_bias)
    frame = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    features = model.encode_frame(frame)
    ungated = model.segment(features, "the red circle", None)
    model.config.grounding.object_score_gate = True
    gated = model.segment(features, "the red circle", None)
    assert gated.has_seg and gated.num_seg == 1 and gated.score == ungated.score
    assert ungated.mask.any()  # a random model's mask: the gate has something to remove
    if logit_bias > 0:
        assert np.array_equal(gated.mask, ungated.mask)
    else:
        assert not gated.mask.any()
        torch.testing.assert_close(gated.state, ungated.state)  # the state is the [SEG]'s, gated or not


def test_the_gate_survives_export_and_an_init_export_gains_it(tmp_path, micro_config):
    plain = build_random_model("tiny")
    export = save_checkpoint(plain, plain.tokenizer, tmp_path / "plain")
    assert not load_model(export).config.grounding.object_score_gate
    config = micro_config()
    config.model.init, config.model.object_score_gate = str(export), True
    gated = build_model(config.model)
    assert gated.config.grounding.object_score_gate
    reloaded = load_model(save_checkpoint(gated, gated.tokenizer, tmp_path / "gated"))
    assert reloaded.config.grounding.object_score_gate


def test_the_presence_loss_trains_the_seg_attention_mass_on_the_image_toward_in_view(micro_config):
    config = micro_config(data={**ABSENT, "absent_answer": "[SEG]."}, loss={"seg_presence_weight": 1.0})
    model, trainer, sample, in_view = _seg_answered_absent(config)
    out = trainer([sample], torch.Generator().manual_seed(0))
    masses = torch.stack([f[0].seg_image_mass for f in trainer.last_frames])
    assert torch.all((masses > 0) & (masses <= 1 + 1e-6))  # a share of one softmax row
    torch.testing.assert_close(out["seg_presence"], torch.nn.functional.binary_cross_entropy(
        masses.float().clamp(1e-6, 1 - 1e-6), torch.tensor(in_view, dtype=torch.float32)))
    out["seg_presence"].backward()
    grads = [p.grad for p in model.language_model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)  # it reaches the LLM that makes the attention
    off = TrainingModel(model, dataclasses.replace(config.loss, seg_presence_weight=0.0))
    with torch.no_grad():
        off([sample], torch.Generator().manual_seed(0))
    assert "seg_presence" not in off([sample], torch.Generator().manual_seed(0))
    assert all(f[0].seg_image_mass is None for f in off.last_frames)


def test_the_presence_gate_empties_the_mask_only_below_its_threshold_and_travels_with_an_export(tmp_path):
    from strvos_core.config import GroundingConfig
    from strvos_core.training.build import add_attention_click

    model = build_random_model("tiny", answer="seg")
    add_attention_click(model)
    frame = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    with torch.no_grad():
        features = model.encode_frame(frame)
        ungated = model.segment(features, "the red circle", None)
        model.config.grounding.presence_gate = 1e-9  # every row puts more than this on the image
        low = model.segment(features, "the red circle", None)
        model.config.grounding.presence_gate = 0.999999  # no row puts all of itself on the image
        high = model.segment(features, "the red circle", None)
    assert ungated.mask.any(), "the random model's mask should not be empty for this check"
    np.testing.assert_array_equal(low.mask, ungated.mask)
    assert low.score == ungated.score
    assert not high.mask.any() and high.score == 0.0 and high.has_seg and high.num_seg == ungated.num_seg
    reloaded = load_model(save_checkpoint(model, model.tokenizer, tmp_path / "gated"))
    assert reloaded.config.grounding.presence_gate == 0.999999
    with pytest.raises(StrvosError, match="attention_click"):
        GroundingConfig(presence_gate=0.3)
    with pytest.raises(StrvosError, match=r"\[0, 1\)"):
        GroundingConfig(presence_gate=1.0, attention_click=True)
