"""Stage "promptable": SAM 2's own task (clicks, boxes, corrective clicks) trained from scratch with real SAM 2
modules at micro size, its prompt sampling, the mimetic decoder init, per-part learning rates, resuming, and the
held-out prompt evaluation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from strvos_core.errors import StrvosError
from strvos_core.training import checkpointing, prompt_eval, train
from strvos_core.training.attention_init import mimetic_attention_init
from strvos_core.training.build import build_model, configure_trainable
from strvos_core.training.data import SyntheticPool
from strvos_core.training.forward import TrainingModel
from strvos_core.training.promptable import (
    BOX_BOTTOM_RIGHT,
    BOX_TOP_LEFT,
    NEGATIVE,
    POSITIVE,
    corrective_click,
    jittered_box,
    sample_prompts,
)
from strvos_core.training.trainer import parameter_groups

PROMPTABLE = {"stage": "promptable", "prompts_per_frame": 6, "box_fraction": 0.5, "corrective_fraction": 1.0}
SAM_ONLY = {"vision": "frozen", "mlp1": "frozen", "llm": "frozen", "embeddings": "frozen",
            "text_hidden_fcs": "frozen", "sam2_image_encoder": "full", "sam2_prompt_encoder": "full",
            "sam2_mask_decoder": "full"}


def _labels() -> np.ndarray:
    labels = np.zeros((60, 80), np.uint8)
    labels[5:25, 5:25] = 1
    labels[30:50, 40:75] = 2
    labels[0:3, 78:80] = 3  # 6 px: too small to prompt
    return labels


def test_prompts_cover_every_object_before_repeating_and_are_reproducible():
    labels = _labels()
    prompts = sample_prompts(labels, 5, 0.4, 0.5, np.random.default_rng(3))
    assert len(prompts) == 5
    first_two = {int(labels[p.mask][0]) for p in prompts[:2]}
    assert first_two == {1, 2}  # every promptable object once first; object 3 never
    for p in prompts:
        if p.kind == "click":
            x, y = p.points[0]
            assert p.mask[int(y), int(x)] and p.labels.tolist() == [POSITIVE]
        else:
            assert p.kind == "box" and p.labels.tolist() == [BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]
            assert not p.corrective
    again = sample_prompts(labels, 5, 0.4, 0.5, np.random.default_rng(3))
    assert all(np.array_equal(a.points, b.points) and a.kind == b.kind for a, b in zip(prompts, again, strict=True))
    assert sample_prompts(np.zeros((8, 8), np.uint8), 4, 0.5, 0.5, np.random.default_rng(0)) == []


def test_box_jitter_stays_near_the_object_and_inside_the_frame():
    mask = _labels() == 2  # x 40..74, y 30..49
    for seed in range(50):
        (x0, y0), (x1, y1) = jittered_box(mask, np.random.default_rng(seed))
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 60
        assert abs(x0 - 40) <= 3.5 + 1e-4 and abs(x1 - 75) <= 3.5 + 1e-4  # 10 % of the 35 px side
        assert abs(y0 - 30) <= 2.0 + 1e-4 and abs(y1 - 50) <= 2.0 + 1e-4


def test_corrective_click_goes_to_the_middle_of_the_larger_error():
    goal = np.zeros((20, 20), bool)
    goal[2:18, 2:18] = True
    predicted = goal.copy()
    predicted[2:18, 10:18] = False  # the right half missed
    point, label = corrective_click(predicted, goal)
    assert label == POSITIVE and 12 <= point[0] <= 15 and 5 <= point[1] <= 15  # ties along the middle column
    wrong = goal.copy()
    wrong[0:20, 0:2] = True  # a thin wrong strip, nothing missed
    point, label = corrective_click(wrong, goal)
    assert label == NEGATIVE and point[0] < 2
    assert corrective_click(goal, goal) is None


def test_mimetic_init_makes_query_and_key_one_orthonormal_projection(micro_config):
    model = build_model(micro_config().model)
    decoder = model.grounding_encoder.sam2_model.sam_mask_decoder
    torch.manual_seed(0)
    count = mimetic_attention_init(decoder, 2.0)
    blocks = [m for m in decoder.modules() if hasattr(m, "q_proj") and hasattr(m, "k_proj")]
    assert count == len(blocks) > 0
    for block in blocks:
        q, k = block.q_proj.weight, block.k_proj.weight
        assert torch.equal(q, k) and not block.q_proj.bias.any() and not block.k_proj.bias.any()
        gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        torch.testing.assert_close(gram, 4.0 * torch.eye(gram.shape[0]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        mimetic_attention_init(decoder, 0.0)
    built = build_model(micro_config(model={"decoder_attention_init": 1.0}).model)
    again = build_model(micro_config(model={"decoder_attention_init": 1.0}).model)
    first = built.grounding_encoder.sam2_model.sam_mask_decoder.transformer.layers[0].cross_attn_token_to_image
    second = again.grounding_encoder.sam2_model.sam_mask_decoder.transformer.layers[0].cross_attn_token_to_image
    assert torch.equal(first.q_proj.weight, first.k_proj.weight)
    assert torch.equal(first.q_proj.weight, second.q_proj.weight)  # seeded: the same init every build


def test_promptable_forward_trains_sam2_only_on_all_prompt_kinds(micro_config):
    config = micro_config(data=PROMPTABLE, trainable=SAM_ONLY)
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    assert sample.prompts and not sample.targets and {p.kind for p in sample.prompts} == {"click", "box"}
    terms = TrainingModel(model, config.loss)([sample])
    assert set(terms) >= {"loss", "mask", "iou", "bce", "dice", "lm"} and float(terms["lm"]) == 0.0
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    sam = model.grounding_encoder.sam2_model
    for part in (sam.image_encoder, sam.sam_prompt_encoder, sam.sam_mask_decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    assert all(p.grad is None for p in model.language_model.parameters())


def test_lr_scales_make_one_group_per_part(micro_config):
    config = micro_config(data=PROMPTABLE, trainable=SAM_ONLY, optim={"lr": 1e-3,
                                                                      "lr_scales": {"sam2_image_encoder": 0.1}})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    groups = parameter_groups(model, TrainingModel(model, config.loss), config)
    encoder = {id(p) for p in model.grounding_encoder.sam2_model.image_encoder.parameters()}
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in groups[1]["params"]} == encoder
    assert not encoder & {id(p) for p in groups[0]["params"]}
    with pytest.raises(StrvosError, match="lr_scales"):
        micro_config(optim={"lr_scales": {"no_such_part": 0.1}})


def test_promptable_run_resumes_bit_exactly_and_is_evaluated(micro_config, tmp_path):
    config = micro_config(data=PROMPTABLE, trainable=SAM_ONLY, model={"decoder_attention_init": 1.0},
                          optim={"lr_scales": {"sam2_image_encoder": 0.1}}, run={"steps": 2})
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "resumed", stop_after=1, progress=False)
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    a, b = ([json.loads(line) for line in r.log_path.read_text().splitlines()] for r in (straight, resumed))
    for key in ("loss", "mask", "iou", "lr", "grad_norm"):
        assert [r[key] for r in a] == [r[key] for r in b], key
    model = checkpointing.load_model(resumed.last_checkpoint)
    scores = prompt_eval.evaluate(model, config.data, frames=2, seed=5)
    assert scores["objects"] > 0
    assert all(0.0 <= scores[k] <= 1.0 for k in ("click_best", "click_chosen", "click_others", "box"))
    assert scores["click_best"] >= scores["click_chosen"]


def test_exemplar_tokens_average_the_embedding_over_the_object():
    from strvos_core.training.promptable import exemplar_tokens

    embed = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    shares = torch.zeros(2, 8, 8)
    shares[0, 0:2, 0:2] = 1.0  # inside embedding cell (0, 0) only
    shares[1, 0:2, 0:4] = 1.0  # cells (0, 0) and (0, 1), equally
    tokens = exemplar_tokens(embed, shares)
    torch.testing.assert_close(tokens[0], embed[0, :, 0, 0])
    torch.testing.assert_close(tokens[1], embed[0, :, 0, :2].mean(dim=1))


def test_exemplar_prompts_train_the_decoder_in_the_seg_slot(micro_config):
    labels = _labels()
    prompts = sample_prompts(labels, 8, 0.0, 0.0, np.random.default_rng(0), exemplar_fraction=1.0)
    assert {p.kind for p in prompts} == {"exemplar"} and all(len(p.points) == 0 for p in prompts)
    no_exemplars = sample_prompts(labels, 8, 0.3, 0.5, np.random.default_rng(4))
    again = sample_prompts(labels, 8, 0.3, 0.5, np.random.default_rng(4), exemplar_fraction=0.0)
    assert [p.kind for p in no_exemplars] == [p.kind for p in again]  # off: the same draws as before the option
    config = micro_config(data={**PROMPTABLE, "exemplar_fraction": 1.0}, trainable=SAM_ONLY)
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    assert {p.kind for p in sample.prompts} == {"exemplar"}
    terms = TrainingModel(model, config.loss)([sample])
    terms["loss"].backward()
    decoder = model.grounding_encoder.sam2_model.sam_mask_decoder
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder.parameters())


def test_seg_exemplar_loss_pulls_the_seg_token_toward_the_targets_exemplar(micro_config):
    config = micro_config(loss={"seg_exemplar_weight": 1.0, "point_sampling": False},
                          data={"expressions_per_sample": 2})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    terms = TrainingModel(model, config.loss)([SyntheticPool(config.data).sample(0, 0, 0, 0)])
    assert "seg_exemplar" in terms and float(terms["seg_exemplar"].detach()) > 0
    terms["seg_exemplar"].backward()
    assert model.text_hidden_fcs[-2].weight.grad.abs().sum() > 0


def test_stage_0_hands_sam2_alone_to_the_next_stage(micro_config, tmp_path):
    """`strvos convert --grounding-only` writes SAM 2's weights; `model.grounding_init` loads them over a build of
    the same seed, so the next stage has stage 0's SAM 2 and the LLM stage 0 started from."""
    from strvos_core.cli.main import main

    config = micro_config(data=PROMPTABLE, trainable=SAM_ONLY, model={"decoder_attention_init": 1.0},
                          run={"steps": 1})
    train(config, tmp_path / "s0", progress=False)
    out = tmp_path / "sam2.safetensors"
    assert main(["convert", "--checkpoint", str(tmp_path / "s0"), "--out", str(out), "--grounding-only"]) == 0
    trained = checkpointing.load_model(checkpointing.list_checkpoints(tmp_path / "s0")[-1])
    nxt = build_model(micro_config(model={"grounding_init": str(out)}).model)
    mine, theirs = nxt.state_dict(), trained.state_dict()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key  # SAM 2 loaded, the rest rebuilt from the same seed
    with pytest.raises(StrvosError, match="grounding_init"):
        micro_config(model={"grounding_init": str(out), "decoder_attention_init": 1.0})
    other = micro_config(model={"grounding_init": str(out), "overrides": {"grounding": {"image_size": 160}}})
    with pytest.raises(StrvosError, match="config"):
        build_model(other.model)
