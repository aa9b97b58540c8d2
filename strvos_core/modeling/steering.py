"""Program a random LLM's answer deterministically: "[SEG]" once, never, or in a loop.

Why: random weights almost never emit [SEG], so random builds would never exercise SAM 2 or the time-context
recurrence. Steering rewrites a few weights so that the greedy next token depends only on the current input token
(a bigram program) while everything else in the model stays random and context dependent:
  * a few residual dimensions are reserved: dim 0 is a constant (+A for every token), dim i > 0 flags source
    token i (+A only in that token's embedding);
  * no layer may write those dimensions (their rows in every o_proj and down_proj are zeroed), so after the final
    RMSNorm they are exactly proportional to the embedding's values at every position;
  * lm_head is zero except the programmed rows: the default target reads dim 0, source i's target reads dim i
    with a larger weight, so it wins exactly when the input token is source i.
The [SEG] hidden states (the recurrent state) keep depending on the image and on the injected state.
"""
from __future__ import annotations

import torch
from transformers import Qwen2ForCausalLM

ANSWERS = ("seg", "none", "double")
_FLAG = 0.05  # any positive value works; small keeps the hidden states dominated by the random model


def steer_bigram(model: Qwen2ForCausalLM, default_next: int, transitions: dict[int, int]) -> None:
    """Greedy decoding then emits `transitions[current]` after a listed token and `default_next` otherwise."""
    dims = 1 + len(transitions)
    hidden = model.config.hidden_size
    if dims > hidden:
        raise ValueError(f"{len(transitions)} transitions need a hidden size > {dims}")
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        embed[:, :dims] = 0.0
        embed[:, 0] = _FLAG
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[:dims] = 0.0
            if layer.self_attn.o_proj.bias is not None:
                layer.self_attn.o_proj.bias[:dims] = 0.0
            layer.mlp.down_proj.weight[:dims] = 0.0
        model.model.norm.weight[:dims] = 1.0
        head = model.get_output_embeddings().weight
        head.zero_()
        head[default_next, 0] = 1.0
        for i, (source, target) in enumerate(transitions.items(), start=1):
            embed[source, i] = _FLAG
            head[target, i] = 4.0


def steer_answer(model: Qwen2ForCausalLM, tokenizer, answer: str) -> None:
    """answer: "seg" -> "[SEG]<|im_end|>"; "none" -> "<|im_end|>"; "double" -> "[SEG]<p>[SEG]<p>..." (>= 2 [SEG])."""
    vocab = tokenizer.get_vocab()
    seg, end, p = vocab["[SEG]"], vocab["<|im_end|>"], vocab["<p>"]
    if answer == "seg":
        steer_bigram(model, seg, {seg: end})
    elif answer == "none":
        steer_bigram(model, end, {})
    elif answer == "double":
        steer_bigram(model, seg, {seg: p})
    else:
        raise ValueError(f"unknown steered answer {answer!r}; choose one of {ANSWERS}")
