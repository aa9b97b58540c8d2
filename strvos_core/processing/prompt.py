"""Prompt text and token ids, as the reference's `predict_forward_token` and evaluation build them.

    <|im_start|>user\n<img><IMG_CONTEXT>x(256*tiles)</img><context><TIME_CONTEXT></context>\nPlease segment {exp}.
    <|im_end|>\n<|im_start|>assistant\n
(one line in reality). Expressions with a '?' are questions (ReVOS reasoning) and are used verbatim.
"""
from __future__ import annotations

from dataclasses import dataclass

from strvos_core.errors import StrvosError

QWEN_CHAT_INSTRUCTION = "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n"
STOP_WORDS = ("<|im_end|>", "<|endoftext|>")
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
TIME_CONTEXT, CONTEXT_START, CONTEXT_END = "<TIME_CONTEXT>", "<context>", "</context>"
SEG_TOKEN = "[SEG]"
# Longer expressions are rejected: a referring expression is a sentence; 1000 characters is ~250 tokens, already
# more than the image block of a one-tile frame. The limit protects latency, not correctness.
MAX_EXPRESSION_CHARS = 1000


def clean_expression(expression: object) -> str:
    """Strip and validate a referring expression; StrvosError (a ValueError) when it is unusable."""
    if not isinstance(expression, str):
        raise StrvosError(f"expression must be a string, got {type(expression).__name__}")
    text = expression.strip()
    if not text:
        raise StrvosError("expression is empty (or whitespace only)")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise StrvosError(f"expression has {len(text)} characters; the limit is {MAX_EXPRESSION_CHARS}")
    for token in (IMG_CONTEXT, TIME_CONTEXT, SEG_TOKEN, IMG_START, IMG_END, "<|im_start|>", "<|im_end|>"):
        if token in text:
            raise StrvosError(f"expression must not contain the special token {token}")
    return text


MODES = ("video", "image")


def question_text(expression: str, mode: str = "video") -> str:
    """The evaluation's user text for one expression.

    video (refVOS.py, streaming): a segment request, or the question itself when it contains '?'.
    image (RES.py, RefCOCO through `predict_forward`): "<image>\n Please segment {exp} in this image."
    """
    if mode == "image":
        return f"<image>\n Please segment {expression} in this image."
    if mode != "video":
        raise StrvosError(f"prompt mode must be one of {MODES}, got {mode!r}")
    if "?" in expression:
        return "<image>\n" + expression
    return f"<image>\nPlease segment {expression}."


def image_block(num_tiles: int, tokens_per_tile: int = 256) -> str:
    """The string that replaces `<image>`: the image tokens and the one time-context slot."""
    return (
        IMG_START + IMG_CONTEXT * (num_tiles * tokens_per_tile) + IMG_END
        + CONTEXT_START + TIME_CONTEXT + CONTEXT_END
    )


def build_prompt(expression: str, num_tiles: int, tokens_per_tile: int = 256, mode: str = "video") -> str:
    """The full chat prompt for one frame with `num_tiles` tiles."""
    user = question_text(clean_expression(expression), mode).replace("<image>", image_block(num_tiles, tokens_per_tile))
    return QWEN_CHAT_INSTRUCTION.format(input=user)


@dataclass(frozen=True)
class SpecialTokenIds:
    """Token ids the model needs at run time, looked up in the tokenizer (as `preparing_for_generation` does)."""

    img_context: int
    time_context: int
    seg: int
    eos: int
    stop_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> SpecialTokenIds:
        vocab = tokenizer.get_vocab()
        needed = [IMG_CONTEXT, TIME_CONTEXT, SEG_TOKEN, IMG_START, IMG_END, CONTEXT_START, CONTEXT_END]
        missing = [t for t in needed if t not in vocab]
        if missing:
            raise StrvosError(f"tokenizer lacks the special tokens {missing}")
        stops = tuple(vocab[w] for w in STOP_WORDS if w in vocab)
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stops[0]
        return cls(vocab[IMG_CONTEXT], vocab[TIME_CONTEXT], vocab[SEG_TOKEN], eos, tuple(sorted({eos, *stops})))
