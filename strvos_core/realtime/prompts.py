"""The one check of referring expressions and target ids received at run time (from any client).

It applies the core's rules (`processing.prompt.clean_expression`: no special tokens, at most
MAX_EXPRESSION_CHARS) after its own (whitespace collapsed, no control characters, a configurable length limit),
so every prompt it accepts is one the session accepts too: a prompt can only be refused here, at once, with the
reason, and never later while a frame is being processed.
"""
from __future__ import annotations

import re

from strvos_core.errors import StrvosError
from strvos_core.processing.prompt import clean_expression

TARGET_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")  # also a valid ROS topic name token
QUOTED_CHARS = 80  # a refused id is quoted this far in the answer (a hostile 1 MB id must not come back whole)
REPLACEMENT_CHARACTER = "\ufffd"  # what ROS's string conversion puts where the bytes were not UTF-8


class PromptError(ValueError):
    """A prompt or target id that is refused; the message says why."""


def clean_prompt(text: str, max_chars: int) -> str:
    """The prompt with whitespace collapsed; PromptError when empty, too long, not UTF-8, with control characters
    or with a token the model reserves (e.g. [SEG])."""
    if not isinstance(text, str):
        raise PromptError(f"prompt must be a string, got {type(text).__name__}")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise PromptError("prompt is empty or whitespace only")
    if len(cleaned) > max_chars:
        raise PromptError(f"prompt has {len(cleaned)} characters, more than the limit of {max_chars}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise PromptError("prompt contains control characters")
    if REPLACEMENT_CHARACTER in cleaned:  # rclpy decodes invalid UTF-8 to U+FFFD: the model would read noise
        raise PromptError("prompt is not valid UTF-8 (it holds U+FFFD replacement characters)")
    try:
        return clean_expression(cleaned)
    except StrvosError as exc:
        raise PromptError(str(exc)) from None


def check_target_id(target_id: str) -> str:
    """A target id usable in topic names (~/mask/<id>): a letter then letters, digits or '_', <= 63 chars."""
    if not isinstance(target_id, str) or not TARGET_ID_PATTERN.match(target_id):
        raise PromptError(
            f"target id {quoted(target_id)} is invalid: use a letter followed by letters, digits or '_' (max 63)"
        )
    return target_id


def quoted(value: object, limit: int = QUOTED_CHARS) -> str:
    """repr(value), cut to ``limit`` characters with the full length named: answers and logs stay short."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as text"
    return f"{text[:limit]}... ({size})"
