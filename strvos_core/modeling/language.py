"""Qwen2 causal LM and a greedy decoder that returns the post-norm last-layer hidden state of each fed token.

Why a local decoder instead of `generate`: the [SEG] hidden state the reference uses is the one computed when the
generated [SEG] is fed back (its `hidden_states[-n_out:]` over `sequences[:-1]`); a 20-line loop over a KV cache
makes that explicit and gives it without asking `generate` for every layer's states.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

from strvos_core.config import LanguageConfig


def qwen2_config(config: LanguageConfig) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        rope_theta=config.rope_theta,
        rms_norm_eps=config.rms_norm_eps,
        hidden_act=config.hidden_act,
        tie_word_embeddings=config.tie_word_embeddings,
        use_sliding_window=False,
    )


def build_language_model(config: LanguageConfig) -> Qwen2ForCausalLM:
    return Qwen2ForCausalLM(qwen2_config(config))


@dataclass
class GreedyOutput:
    """Generated ids (stop token included) and, for every generated token but the last, its hidden state."""

    token_ids: list[int]
    fed_hidden: torch.Tensor  # [len(token_ids) - 1, C], post-norm last layer at the positions of the fed-back tokens
    # fed-back token index -> its last layer's attention row [heads, keys] (only for `attention_of` tokens)
    fed_attention: dict[int, torch.Tensor] = field(default_factory=dict)


@torch.no_grad()
def greedy_decode(model: Qwen2ForCausalLM, inputs_embeds: torch.Tensor, max_new_tokens: int,
                  stop_ids: tuple[int, ...], attention_of: int | None = None) -> GreedyOutput:
    """Greedy decoding from a [1, N, C] prompt embedding until a stop id or `max_new_tokens` tokens. Where a fed-back
    token is `attention_of` (the [SEG] id for `grounding.attention_click`), its last-layer attention row is kept too
    (the model must run eager attention: sdpa returns no weights)."""
    cache = DynamicCache()
    backbone, head = model.model, model.lm_head
    hidden = backbone(inputs_embeds=inputs_embeds, past_key_values=cache, use_cache=True).last_hidden_state
    position = inputs_embeds.shape[1]
    tokens: list[int] = []
    fed: list[torch.Tensor] = []
    attention: dict[int, torch.Tensor] = {}
    while True:
        next_id = int(head(hidden[:, -1]).argmax(dim=-1))
        tokens.append(next_id)
        if next_id in stop_ids or len(tokens) >= max_new_tokens:
            break
        ids = torch.tensor([[next_id]], device=inputs_embeds.device)
        wanted = next_id == attention_of
        out = backbone(
            input_ids=ids, past_key_values=cache, use_cache=True,
            position_ids=torch.tensor([[position]], device=inputs_embeds.device), output_attentions=wanted,
        )
        if wanted:
            if not out.attentions or out.attentions[-1] is None:
                raise RuntimeError("attention_of needs the LLM's eager attention (sdpa returns no weights)")
            attention[len(fed)] = out.attentions[-1][0, :, -1]
        hidden = out.last_hidden_state
        position += 1
        fed.append(hidden[0, -1])
    width = inputs_embeds.shape[-1]
    stacked = torch.stack(fed) if fed else inputs_embeds.new_zeros((0, width))
    return GreedyOutput(tokens, stacked, attention)
