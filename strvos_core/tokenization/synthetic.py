"""A byte-level BPE tokenizer (Qwen2's pre-tokenizer) trained on the synthetic world's words and prompts.

Why byte-level BPE and not a word list: every synthetic word becomes one token (a small embedding table for the
tiny model), yet any text a user types still encodes (unknown words fall back to bytes), as with Qwen2.
Special tokens follow the reference: the Qwen chat tokens, the InternVL image tokens, then the 8 tokens the
StreamingRVOS configs add, in that order. Saved with `save_pretrained` (tokenizer.json + tokenizer_config.json),
so `AutoTokenizer.from_pretrained(dir)` -- what checkpoint.load_export calls -- loads it. Deterministic.

    python -m strvos_core.tokenization.synthetic OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

from strvos_core.config import REFERENCE_SPECIAL_TOKENS

QWEN_PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
IMAGE_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>"]
SPECIAL_TOKENS = [*CHAT_TOKENS, *IMAGE_TOKENS, *REFERENCE_SPECIAL_TOKENS]
PROMPT_WORDS = ["user", "assistant", "Please segment", "Sure,", "It is", "it is", "the segmentation result is"]
MAX_VOCAB = 1024  # merges stop earlier, once every corpus word is one token


def synthetic_corpus() -> list[str]:
    """Each synthetic word in the prompt context it appears in (after "the", before "."), plus the chat words."""
    from strvos_core.datasets.synthetic import vocabulary_words

    lines = list(PROMPT_WORDS)
    for word in vocabulary_words():
        lines += [f"Please segment the {word}.", f"the {word} object", word]
    lines += ["Sure, [SEG].", "It is [SEG].", "[SEG].", "Sure, it is [SEG].", "Sure, the segmentation result is [SEG]."]
    return lines


def build_synthetic_tokenizer(corpus: list[str] | None = None):
    """A Qwen2TokenizerFast trained on `corpus` (default: synthetic_corpus()) with the special tokens added."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=MAX_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus if corpus is not None else synthetic_corpus(), trainer)
    fast = Qwen2TokenizerFast(tokenizer_object=tok, eos_token=None, pad_token=None, unk_token=None, bos_token=None)
    fast.add_special_tokens({"additional_special_tokens": CHAT_TOKENS + IMAGE_TOKENS})  # Qwen2's id order
    fast.eos_token, fast.pad_token = "<|im_end|>", "<|endoftext|>"
    fast.add_tokens(list(REFERENCE_SPECIAL_TOKENS), special_tokens=True)
    fast.model_max_length = 32768
    return fast


def save_synthetic_tokenizer(directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    build_synthetic_tokenizer().save_pretrained(str(directory))
    return directory


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m strvos_core.tokenization.synthetic OUT_DIR", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {save_synthetic_tokenizer(sys.argv[1])}")
