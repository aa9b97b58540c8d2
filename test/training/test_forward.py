"""The teacher-forced training forward computes what inference computes, and the recurrence is detached (unless
`loss.state_grad`).

The [SEG] state must be the hidden state AT the [SEG] token's own position (what greedy decoding computes when it
feeds [SEG] back): proven against `StreamingRVOSModel.segment` on a model steered to answer "[SEG]<|im_end|>".
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strvos_core.checkpoint import build_random_model
from strvos_core.training.attributes import CANDIDATE_GRID, candidate_map
from strvos_core.training.build import build_model, configure_trainable, set_train_mode
from strvos_core.training.config import LossSection
from strvos_core.training.data import SyntheticPool, prepare_frame
from strvos_core.training.forward import TrainingModel


@pytest.fixture(scope="module")
def steered():
    return build_random_model("tiny", answer="seg")


@pytest.mark.parametrize("with_state", [False, True])
def test_teacher_forced_seg_state_and_mask_equal_inference(steered, with_state):
    frame = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    state = torch.randn(1, steered.config.language.hidden_size, generator=torch.Generator().manual_seed(1)) \
        if with_state else None
    inference = steered.segment(steered.encode_frame(frame), "the red circle", state)
    assert inference.text.startswith("[SEG]") and inference.num_seg == 1

    trainer = TrainingModel(steered, LossSection())
    answer = trainer.answer_ids("[SEG]")
    prepared = prepare_frame(frame, np.zeros((40, 40), dtype=bool), steered.config)
    with torch.no_grad():
        out = trainer.frame_forward(prepared, "the red circle", answer, state)
    torch.testing.assert_close(out.seg_hidden, inference.state, atol=1e-5, rtol=1e-4)
    mask = F.interpolate(out.low_res_logits, size=(40, 40), mode="bilinear", align_corners=False)[0, 0].sigmoid() > 0.5
    assert np.array_equal(mask.numpy(), inference.mask)
    # the LM is taught exactly the tokens greedy decoding produced: [SEG] then <|im_end|>
    assert steered.tokenizer.decode(answer) == "[SEG]<|im_end|>"


def test_recurrence_feeds_the_detached_previous_seg_state(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 3})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    assert len(sample.frames) == 3
    losses = trainer([sample], torch.Generator().manual_seed(0))
    frames = trainer.last_frames[0]
    assert frames[0].state_in is None
    for previous, current in zip(frames, frames[1:], strict=False):
        assert current.state_in is not None and not current.state_in.requires_grad
        assert current.state_in.grad_fn is None  # detached: no backpropagation through time
        assert previous.seg_hidden.requires_grad
        torch.testing.assert_close(current.state_in, previous.seg_hidden.detach())
    # the state is really used: the same frame without it gives another [SEG] state
    prepared = prepare_frame(sample.frames[1], sample.masks[1], model.config)
    answer = trainer.answer_ids(sample.answer)
    with torch.no_grad():
        again = trainer.frame_forward(prepared, sample.expression, answer, frames[1].state_in)
        without = trainer.frame_forward(prepared, sample.expression, answer, None)
    torch.testing.assert_close(again.seg_hidden, frames[1].seg_hidden.detach())
    assert not torch.allclose(without.seg_hidden, again.seg_hidden, atol=1e-5)
    losses["loss"].backward()  # every frame's answer and mask are in the loss
    assert model.text_hidden_fcs[0].weight.grad is not None


def test_state_grad_trains_the_previous_frame_through_the_recurrence(micro_config):
    """loss.state_grad: the state keeps its graph, so a later frame's loss reaches the earlier frame's [SEG] state."""
    config = micro_config(data={"stage": "video", "clip_frames": 2}, loss={"state_grad": True})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    trainer([sample], torch.Generator().manual_seed(0))
    first, second = trainer.last_frames[0]
    assert second.state_in is first.seg_hidden and second.state_in.requires_grad
    # the second frame's [SEG] state alone depends on the first frame's state: a gradient flows back into it
    (grad,) = torch.autograd.grad(second.seg_hidden.sum(), first.seg_hidden, retain_graph=True)
    assert grad.abs().sum() > 0


def test_a_blind_frame_gives_the_llm_a_blank_image_and_sam2_the_frame(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 3, "llm_blind_fraction": 0.6},
                          loss={"seg_attention_weight": 1.0})
    pool = SyntheticPool(config.data)
    samples = [pool.sample(step, 0, 0, 0) for step in range(12)]
    assert all(len(s.blind) == 3 and not s.blind[0] for s in samples)  # the first frame always sees its image
    sample = next(s for s in samples if s.blind[1])
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    trainer = TrainingModel(model, config.loss)
    with torch.no_grad():
        trainer([sample], torch.Generator().manual_seed(0))
        blind_state = trainer.last_frames[0][1].seg_hidden
        tokens, sam = trainer.frame_features(prepare_frame(sample.frames[1], sample.masks[1], model.config))
        answer = trainer.answer_ids(sample.answer)
        prepared = prepare_frame(sample.frames[1], sample.masks[1], model.config)
        state_in = trainer.last_frames[0][1].state_in
        blank = trainer.frame_forward_many(prepared, [sample.expression], [answer], [state_in],
                                           (torch.zeros_like(tokens), sam))[0]
        seeing = trainer.frame_forward_many(prepared, [sample.expression], [answer], [state_in], (tokens, sam))[0]
    torch.testing.assert_close(blind_state, blank.seg_hidden)
    assert not torch.allclose(blind_state, seeing.seg_hidden, atol=1e-5)
    # without the option the samples are what they were
    plain = micro_config(data={"stage": "video", "clip_frames": 3})
    a, b = SyntheticPool(plain.data).sample(3, 0, 0, 0), pool.sample(3, 0, 0, 0)
    assert a.blind == [] and [t.expression for t in a.targets] == [t.expression for t in b.targets]


def test_state_attention_loss_pulls_seg_onto_the_fed_back_state_on_blind_frames(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 3, "llm_blind_fraction": 0.6},
                          loss={"state_attention_weight": 1.0, "state_grad": True})
    pool = SyntheticPool(config.data)
    sample = next(s for s in (pool.sample(step, 0, 0, 0) for step in range(12)) if s.blind[1])
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    trainer = TrainingModel(model, config.loss)
    out = trainer([sample], torch.Generator().manual_seed(0))
    # recomputed with one plain pass of the whole sequence per blind frame and target: [SEG]'s attention on the
    # <TIME_CONTEXT> slot, mean over heads, then over layers
    expected = []
    ids_of = model.token_ids
    for target, frames in zip(sample.targets, trainer.last_frames, strict=True):
        for t in (t for t in range(3) if sample.blind[t]):
            prepared = prepare_frame(sample.frames[t], target.masks[t], model.config)
            tokens, _ = trainer.frame_features(prepared)
            prompt = model.prompt_ids(target.expression, prepared.tiles.shape[0])[0]
            ids = torch.cat([prompt, trainer.answer_ids(target.answer)])
            embeds = model.prompt_embeddings(ids[None], torch.zeros_like(tokens), frames[t].state_in)
            attentions = model.language_model(inputs_embeds=embeds, output_attentions=True).attentions
            seg, slot = int(torch.nonzero(ids == ids_of.seg)[0]), int(torch.nonzero(ids == ids_of.time_context)[0])
            expected.append(-torch.stack([a[0, :, seg, slot].mean() for a in attentions]).mean().log())
    torch.testing.assert_close(out["state_attention"], torch.stack(expected).mean(), rtol=1e-4, atol=1e-5)
    # it trains the frame before's state (state_grad) and the LLM's attention
    (grad,) = torch.autograd.grad(out["state_attention"], trainer.last_frames[0][0].seg_hidden, retain_graph=True)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match="llm_blind_fraction"):
        micro_config(data={"stage": "video", "clip_frames": 3}, loss={"state_attention_weight": 1.0})


def test_candidate_map_covers_every_object_the_noun_phrase_fits():
    labels = np.zeros((16, 16), dtype=np.uint8)
    labels[0:4, 0:4] = 1  # a red circle: the target
    labels[12:16, 12:16] = 2  # another red circle: a candidate too
    labels[0:4, 12:16] = 3  # a blue circle: not named by "red circle"
    attributes = {1: {"colour": "red", "shape": "circle"}, 2: {"colour": "red", "shape": "circle"},
                  3: {"colour": "blue", "shape": "circle"}}
    goal = candidate_map("the red circle moving left", labels, attributes).reshape(CANDIDATE_GRID, CANDIDATE_GRID)
    assert goal[0:2, 0:2].eq(1).all() and goal[6:8, 6:8].eq(1).all()
    assert goal.sum() == 8 and goal[0:2, 6:8].eq(0).all()
    # "the circle" fits all three
    assert candidate_map("the circle", labels, attributes).sum() == 12
    with pytest.raises(ValueError, match="state_candidates_weight needs synthetic expressions"):
        candidate_map("a mug on the table", labels, attributes)


def test_state_candidates_loss_trains_the_state_fed_back(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 2}, loss={"state_candidates_weight": 1.0})
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    sample = SyntheticPool(config.data).sample(0, 0, 0, 0)
    out = trainer([sample], torch.Generator().manual_seed(0))
    head = trainer.training_heads["state_candidates"]
    # the term is the mean over the clip's frames and the sample's targets of the head on each frame's [SEG] state
    expected = torch.stack([
        F.binary_cross_entropy_with_logits(head(frames[t].seg_hidden[0].float()),
                                           candidate_map(target.expression, sample.labels[t], sample.attributes))
        for target, frames in zip(sample.targets, trainer.last_frames, strict=True) for t in range(2)]).mean()
    torch.testing.assert_close(out["state_candidates"], expected)
    # and it reaches the state that the next frame is fed
    first = trainer.last_frames[0][0]
    (grad,) = torch.autograd.grad(out["state_candidates"], first.seg_hidden, retain_graph=True)
    assert grad.abs().sum() > 0


def test_clip_max_gap_draws_clips_close_together(micro_config):
    config = micro_config(data={"stage": "video", "clip_frames": 4, "clip_max_gap": 2, "frames_per_video": 12})
    pool = SyntheticPool(config.data)
    rng = np.random.default_rng(0)
    gaps = set()
    for _ in range(200):
        frames = pool._clip_frames(12, rng)
        assert len(frames) == 4 and 0 <= frames[0] and frames[-1] < 12
        gaps.update(np.diff(frames).tolist())
    assert gaps == {1, 2}
    # a gap that cannot fit is shrunk until the clip fits: 4 frames of 5 leave gaps of 1 only
    for _ in range(20):
        assert np.diff(pool._clip_frames(5, rng)).tolist() == [1, 1, 1]


def test_one_step_at_a_time_reduces_the_loss_on_a_fixed_batch(micro_config):
    config = micro_config()
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    pool = SyntheticPool(config.data)
    batch = [pool.sample(0, 0, 0, 0)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.05)
    history = []
    for _ in range(3):
        terms = trainer(batch, torch.Generator().manual_seed(0))
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        history.append(float(terms["loss"].detach()))
    assert all(b < a for a, b in zip(history, history[1:], strict=False)), history
