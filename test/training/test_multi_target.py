"""Samples with several expressions over shared frames, the dense mask loss, and the float16 export."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strvos_core.training import losses
from strvos_core.training.build import build_model, configure_trainable, set_train_mode
from strvos_core.training.config import LossSection
from strvos_core.training.data import SyntheticPool, low_res_mask, prepare_frame
from strvos_core.training.forward import TrainingModel
from strvos_core.training.losses import mask_losses


def test_image_sample_holds_distinct_visible_targets_on_one_frame(micro_config):
    config = micro_config(data={"expressions_per_sample": 3, "num_videos": 4})
    pool = SyntheticPool(config.data)
    for index in range(6):
        sample = pool.sample(0, 0, 0, index)
        assert len(sample.frames) == 1 and 1 <= len(sample.targets) <= 3
        video = pool.video(sample.video)
        texts = {text: obj for text, obj, kind in video.expressions if kind in ("appearance", "relation")}
        objects = [texts[t.expression] for t in sample.targets]
        t = next(i for i in range(len(video.frames)) if np.array_equal(video.frames[i], sample.frames[0]))
        visible = {obj for obj in texts.values() if (video.labels[t] == obj).any()}
        assert set(objects) <= visible
        # distinct targets first: repeats only once every visible target was drawn
        assert len(set(objects)) == min(len(objects), len(visible))
        for target, obj in zip(sample.targets, objects, strict=True):
            assert np.array_equal(target.masks[0], video.labels[t] == obj)
        assert sample.targets[0].masks[0].any()  # the frame was drawn where a target is visible


def test_targets_of_a_sample_share_the_frame_work_and_keep_their_own_state(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 2, "expressions_per_sample": 2})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    model.eval()  # no dropout: the separate forward below must reproduce the batched one
    trainer = TrainingModel(model, config.loss)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    assert len(sample.targets) == 2
    with torch.no_grad():
        trainer([sample], torch.Generator().manual_seed(0))
        assert len(trainer.last_frames) == 2 and all(len(f) == 2 for f in trainer.last_frames)
        for k, target in enumerate(sample.targets):  # each target alone, frame by frame, its own state
            state = None
            answer = trainer.answer_ids(target.answer)
            for t, frame in enumerate(sample.frames):
                alone = trainer.frame_forward(prepare_frame(frame, target.masks[t], model.config),
                                              target.expression, answer, state)
                torch.testing.assert_close(alone.seg_hidden, trainer.last_frames[k][t].seg_hidden)
                torch.testing.assert_close(alone.low_res_logits, trainer.last_frames[k][t].low_res_logits)
                state = alone.seg_hidden


def test_dense_mask_loss_covers_every_pixel():
    logits = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    masks = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.7
    bce, dice = mask_losses(logits, masks.float(), LossSection(point_sampling=False))
    expected_bce = F.binary_cross_entropy_with_logits(logits[:, 0], masks.float())
    p, t = logits.flatten(1).sigmoid(), masks.flatten(1).float()
    expected_dice = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()
    torch.testing.assert_close(bce, expected_bce)
    torch.testing.assert_close(dice, expected_dice)


def test_low_res_mask_is_the_nearest_resize_to_a_quarter_of_the_sam_input(micro_config):
    config = micro_config()
    model_config = build_model(config.model).config
    mask = np.zeros((64, 96), bool)
    mask[:, :48] = True
    low = low_res_mask(mask, model_config)
    size = model_config.grounding.image_size // 4
    assert low.shape == (size, size)
    assert low[:, : size // 2].all() and not low[:, size // 2:].any()


def test_float16_export_halves_the_file_and_loads_into_float32(tmp_path):
    from strvos_core.checkpoint import build_random_model, load_model, save_checkpoint

    model = build_random_model("tiny")
    full = save_checkpoint(model, model.tokenizer, tmp_path / "fp32")
    half = save_checkpoint(model, model.tokenizer, tmp_path / "fp16", dtype="float16")
    size = (full / "model.safetensors").stat().st_size, (half / "model.safetensors").stat().st_size
    assert 0.45 < size[1] / size[0] < 0.55
    loaded = load_model(half)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert b.dtype == a.dtype, name
        if a.is_floating_point():
            torch.testing.assert_close(b, a.half().to(a.dtype), msg=name)
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ref = model.segment(model.encode_frame(frame), "the red circle", None)
    got = loaded.segment(loaded.encode_frame(frame), "the red circle", None)
    assert got.text == ref.text
    assert (got.mask == ref.mask).mean() > 0.99


def test_lm_loss_without_backbone_gradient_trains_only_lm_head(micro_config):
    config = micro_config(loss={"lm_backbone_grad": False, "bce_weight": 0.0, "dice_weight": 0.0})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    terms = TrainingModel(model, config.loss)([SyntheticPool(config.data).sample(0, 0, 0, 0)])
    assert float(terms["lm"].detach()) > 0
    terms["loss"].backward()
    assert model.language_model.lm_head.weight.grad.abs().sum() > 0
    backbone = [p.grad for p in model.language_model.model.parameters() if p.requires_grad]
    assert backbone and all(g is None or not g.any() for g in backbone)


def test_clicks_hit_their_object_and_train_the_best_of_three_candidates(micro_config):
    config = micro_config(data={"clicks_per_frame": 2, "num_videos": 3})
    pool = SyntheticPool(config.data)
    sample = pool.sample(0, 0, 0, 1)
    assert len(sample.clicks) == len(sample.frames) and 1 <= len(sample.clicks[0]) <= 2
    for click in sample.clicks[0]:
        assert click.mask[int(click.y), int(click.x)]  # the click lies on the object it teaches
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    model.eval()
    trainer = TrainingModel(model, config.loss)
    prepared = prepare_frame(sample.frames[0], sample.targets[0].masks[0], model.config)
    _, sam = trainer.frame_features(prepared)
    with torch.no_grad():
        got = trainer.click_losses(sam, sample.clicks[0], sample.frames[0].shape[:2])
        for click, loss in zip(sample.clicks[0], got, strict=True):
            h, w = sample.frames[0].shape[:2]
            size = model.config.grounding.image_size
            points = torch.tensor([[[0.0, 0.0], [click.x * size / w, click.y * size / h]]])  # "not a point" first
            candidates = model.grounding_encoder.prompt_masks(sam, points, torch.tensor([[-1, 1]]))[0][0]
            gt = low_res_mask(click.mask, model.config)
            each = [2 * F.binary_cross_entropy_with_logits(c, gt) + 0.5 * mask_losses(
                c[None, None], gt[None], LossSection(point_sampling=False))[1] for c in candidates]
            torch.testing.assert_close(loss, torch.stack(each).min())
    terms = trainer([sample])
    assert "click" in terms and float(terms["click"].detach()) > 0


@pytest.mark.parametrize("attention_weight", [1.0, 0.0])  # eager attention (weights returned) and sdpa
def test_shared_prefix_pass_equals_one_plain_pass_per_expression(micro_config, attention_weight):
    """The chat header and image tokens run once, each expression's rest on that cache, the rests batched and
    right-padded: every output equals a plain, uncached backbone pass over that expression's whole sequence."""
    config = micro_config(loss={"seg_attention_weight": attention_weight, "value_position_weight": 1.0,
                                "point_sampling": False},
                          data={"expressions_per_sample": 3})
    model = build_model(config.model)
    model.eval()
    trainer = TrainingModel(model, config.loss)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    prepared = prepare_frame(sample.frames[0], sample.targets[0].masks[0], model.config)
    expressions = ["the red circle", "the large striped object left of the blue star", "the square"]
    answers = [trainer.answer_ids(a) for a in ("[SEG].", "Sure, [SEG].", "It is [SEG].")]
    states = [None, torch.randn(1, model.config.language.hidden_size), None]  # a per-target time context
    backbone = model.language_model.model
    with torch.no_grad():
        features = trainer.frame_features(prepared)
        many = trainer.frame_forward_many(prepared, expressions, answers, states, features)
        for expression, answer, state, out in zip(expressions, answers, states, many, strict=True):
            prompt = model.prompt_ids(expression, 1)
            ids = torch.cat([prompt, answer[None]], dim=1)
            plain = backbone(inputs_embeds=model.prompt_embeddings(ids, features[0], state), output_attentions=True)
            seg = int(torch.nonzero(ids[0] == model.token_ids.seg)[0, 0])
            torch.testing.assert_close(out.seg_hidden, plain.last_hidden_state[:, seg], rtol=1e-5, atol=1e-5)
            if attention_weight > 0:
                row = plain.attentions[-1][0, :, seg].mean(dim=0)[ids[0] == model.token_ids.img_context]
                torch.testing.assert_close(out.seg_attention, row / row.sum(), rtol=1e-5, atol=1e-6)
            else:
                assert out.seg_attention is None
            hidden = plain.last_hidden_state[0, prompt.shape[1] - 1:-1]
            lm_sum, lm_tokens = losses.answer_cross_entropy(model.language_model.lm_head(hidden), answer)
            assert out.lm_tokens == lm_tokens == answer.numel()
            torch.testing.assert_close(out.lm_loss_sum, lm_sum, rtol=1e-5, atol=1e-5)
            decoded = model.grounding_encoder.predict_mask(features[1], model.text_hidden_fcs(out.seg_hidden))
            torch.testing.assert_close(out.low_res_logits, decoded.low_res_logits)


def test_llm_side_stage_skips_sam2_and_trains_the_query(micro_config):
    """seg_mask_weight 0 with no SAM 2 aid: SAM 2 never runs, the mask terms are 0 and the attention loss still
    reaches the LLM."""
    config = micro_config(loss={"seg_mask_weight": 0.0, "seg_attention_weight": 1.0, "seg_position_weight": 1.0,
                                "point_sampling": False},
                          trainable={"llm": "full", "sam2_mask_decoder": "frozen"},
                          data={"expressions_per_sample": 2, "expressions_per_kind": 3})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    assert not trainer.uses_sam2
    calls = []
    hook = model.grounding_encoder.sam2_model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    out = trainer([SyntheticPool(config.data).sample(0, 0, 0, 0)])
    hook.remove()
    assert calls == [] and float(out["bce"]) == float(out["dice"]) == 0.0
    assert all(f[0].low_res_logits is None for f in trainer.last_frames)
    out["loss"].backward()
    q = model.language_model.model.layers[-1].self_attn.q_proj.weight
    assert q.grad is not None and float(q.grad.abs().sum()) > 0


def test_more_phrasings_per_kind_give_more_expressions_over_the_same_frames(micro_config):
    one = SyntheticPool(micro_config(data={"num_videos": 2}).data).video(0)
    more = SyntheticPool(micro_config(data={"num_videos": 2, "expressions_per_kind": 4}).data).video(0)
    assert np.array_equal(one.frames, more.frames)
    assert len(more.expressions) > len(one.expressions)
