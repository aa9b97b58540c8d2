"""Tokenizers trained here (no model hub): the synthetic-world tokenizer of the tiny shipped model."""
from strvos_core.tokenization.synthetic import (
    SPECIAL_TOKENS,
    build_synthetic_tokenizer,
    save_synthetic_tokenizer,
    synthetic_corpus,
)

__all__ = ["SPECIAL_TOKENS", "build_synthetic_tokenizer", "save_synthetic_tokenizer", "synthetic_corpus"]
