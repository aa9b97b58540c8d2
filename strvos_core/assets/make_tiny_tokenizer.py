"""Builds the bundled tiny Qwen2-style tokenizer (strvos_core/assets/tiny_tokenizer).

Why: tests and `random:<preset>` builds need a real byte-level BPE tokenizer with the reference's special tokens,
and no model hub is reachable. The files are committed; rerun this script only to change them:
    python strvos_core/assets/make_tiny_tokenizer.py
It trains a 640-token byte-level BPE (Qwen2's pre-tokenizer regex) on a small generated English corpus,
then adds, in the reference order, the Qwen chat tokens, the InternVL image tokens and the 8 Sa2VA/StreamingRVOS
tokens. Deterministic: same files on every run.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parent / "tiny_tokenizer"
QWEN_PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>"]
REFERENCE_TOKENS = ["[SEG]", "<p>", "</p>", "<vp>", "</vp>", "<TIME_CONTEXT>", "<context>", "</context>"]


def corpus() -> list[str]:
    colours = ["red", "blue", "green", "white", "black", "yellow"]
    things = ["mug", "cup", "laptop", "person", "dog", "cat", "car", "box", "bottle", "chair", "ball", "robot"]
    places = ["left of", "right of", "behind", "in front of", "next to", "on top of"]
    lines = ["user", "assistant", "Please segment", "Sure, it is [SEG].", "It is", "Sure,", "the", "?", "."]
    for c, t, p, t2 in itertools.product(colours, things, places, things[:4]):
        lines.append(f"Please segment the {c} {t} {p} the {t2}.")
        lines.append(f"Which {t} is moving {p} the {t2}? Sure, the segmentation result is here.")
    return lines


def build() -> None:
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = Qwen2TokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
    )
    fast.add_special_tokens({"additional_special_tokens": CHAT_TOKENS + IMAGE_TOKENS})
    fast.add_tokens(REFERENCE_TOKENS, special_tokens=True)
    fast.model_max_length = 32768
    OUT.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(OUT)


if __name__ == "__main__":
    build()
    print(f"wrote {OUT}")
