"""The time-context recurrence, proven numerically against a plain Qwen2 forward pass.

The tiny model's answer is steered (modeling/steering.py) to "[SEG]" once, never, or twice, so each branch of the
update rule (state = the [SEG] hidden state iff exactly one [SEG]) is exercised.
"""
from __future__ import annotations

import torch

from strvos_core.modeling.steering import steer_answer


def manual_seg_state(model, frame, expression, state):
    """Prompt embeddings (image tokens + optional state), then [SEG] appended; last-layer post-norm hidden at [SEG]."""
    features = model.encode_frame(frame)
    ids = model.prompt_ids(expression, features.num_tiles)
    embeds = model.language_model.get_input_embeddings()(ids)[0].clone()
    embeds[ids[0] == model.token_ids.img_context] = features.image_tokens
    if state is not None:
        embeds[ids[0] == model.token_ids.time_context] = state[0]
    seg = model.language_model.get_input_embeddings()(torch.tensor([model.token_ids.seg]))
    full = torch.cat([embeds, seg])[None]
    with torch.no_grad():
        hidden = model.language_model.model(inputs_embeds=full).last_hidden_state
    return hidden[0, -1:]


def test_state_is_the_seg_hidden_state_and_is_fed_back(tiny_backend, steered, random_frame):
    session = tiny_backend.start_session({"t": "the red mug"})
    frames = [random_frame(seed=s) for s in (10, 11)]
    session.step(frames[0])
    first = session.state("t")
    expected_first = manual_seg_state(steered, frames[0], "the red mug", None)
    torch.testing.assert_close(first, expected_first, atol=1e-5, rtol=1e-4)
    session.step(frames[1])
    second = session.state("t")
    with_state = manual_seg_state(steered, frames[1], "the red mug", first)
    without_state = manual_seg_state(steered, frames[1], "the red mug", None)
    torch.testing.assert_close(second, with_state, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(second, without_state, atol=1e-4)  # the injected state changes the answer's state
    assert second.device == steered.device


def test_state_resets_on_zero_or_two_seg(tiny_backend, steered, random_frame):
    session = tiny_backend.start_session({"t": "the dog"})
    session.step(random_frame(seed=1))
    assert session.state("t") is not None
    steer_answer(steered.language_model, steered.tokenizer, "none")
    result = session.step(random_frame(seed=2)).targets["t"]
    assert session.state("t") is None and not result.has_seg and not result.mask.any() and result.score == 0.0
    steer_answer(steered.language_model, steered.tokenizer, "seg")
    session.step(random_frame(seed=3))
    assert session.state("t") is not None
    steer_answer(steered.language_model, steered.tokenizer, "double")
    result = session.step(random_frame(seed=4)).targets["t"]
    assert result.text.count("[SEG]") >= 2 and result.has_seg
    assert session.state("t") is None  # two [SEG]: back to the learned <TIME_CONTEXT> embedding
