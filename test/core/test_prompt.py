"""Prompt text and special token ids, as the reference builds them."""
from __future__ import annotations

import pytest

from strvos_core.checkpoint import load_tiny_tokenizer
from strvos_core.errors import StrvosError
from strvos_core.processing.prompt import (
    MAX_EXPRESSION_CHARS,
    SpecialTokenIds,
    build_prompt,
    clean_expression,
)


def test_segment_prompt_exact():
    expected = ("<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * 768 + "</img><context><TIME_CONTEXT></context>\n"
                "Please segment the red mug.<|im_end|>\n<|im_start|>assistant\n")
    assert build_prompt("the red mug", 3) == expected


def test_image_mode_prompt_is_refcocos():
    # RES.py: "<image>\n Please segment {sent} in this image." (with the space), even for questions
    expected = ("<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * 256 + "</img><context><TIME_CONTEXT></context>\n"
                " Please segment the red mug? in this image.<|im_end|>\n<|im_start|>assistant\n")
    assert build_prompt("the red mug?", 1, mode="image") == expected
    with pytest.raises(StrvosError, match="mode"):
        build_prompt("the red mug", 1, mode="clip")


def test_question_used_verbatim():
    prompt = build_prompt("which dog is running?", 1)
    assert "</context>\nwhich dog is running?<|im_end|>" in prompt
    assert "Please segment" not in prompt


def test_tokenizer_ids_and_round_trip():
    tokenizer = load_tiny_tokenizer()
    ids = SpecialTokenIds.from_tokenizer(tokenizer)
    prompt = build_prompt("the mug", 1)
    encoded = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert encoded.count(ids.img_context) == 256
    assert encoded.count(ids.time_context) == 1
    assert tokenizer.decode(encoded) == prompt
    assert tokenizer.convert_ids_to_tokens(ids.eos) == "<|im_end|>"
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in ids.stop_ids
    # the reference's added tokens, in order
    order = ["[SEG]", "<p>", "</p>", "<vp>", "</vp>", "<TIME_CONTEXT>", "<context>", "</context>"]
    assert tokenizer.convert_tokens_to_ids(order) == list(range(ids.seg, ids.seg + 8))


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * 10_000, "a <IMG_CONTEXT> b", None, 3])
def test_bad_expressions_rejected(bad):
    with pytest.raises(StrvosError):
        clean_expression(bad)


def test_expression_limits_and_unicode():
    assert clean_expression("  die rote Tasse  ") == "die rote Tasse"
    assert clean_expression("红色的杯子 ☕") == "红色的杯子 ☕"
    assert len(clean_expression("y" * MAX_EXPRESSION_CHARS)) == MAX_EXPRESSION_CHARS
