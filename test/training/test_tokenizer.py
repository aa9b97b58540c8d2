"""The synthetic tokenizer: one token per synthetic word, the reference's special tokens, standard files."""
from __future__ import annotations

from transformers import AutoTokenizer

from strvos_core.config import REFERENCE_SPECIAL_TOKENS
from strvos_core.datasets.synthetic import vocabulary_words
from strvos_core.processing.prompt import SpecialTokenIds, build_prompt
from strvos_core.tokenization import SPECIAL_TOKENS, build_synthetic_tokenizer, save_synthetic_tokenizer


def test_every_synthetic_word_is_one_token_and_special_tokens_follow_the_reference():
    tok = build_synthetic_tokenizer()
    for word in vocabulary_words():
        assert len(tok.tokenize(" " + word)) == 1, word
    vocab = tok.get_vocab()
    ids = [vocab[t] for t in SPECIAL_TOKENS]
    assert ids == sorted(ids) and ids[-1] == len(tok) - 1  # appended last, in the reference order
    assert [vocab[t] for t in REFERENCE_SPECIAL_TOKENS] == list(range(len(tok) - 8, len(tok)))
    assert tok.eos_token == "<|im_end|>" and len(tok) < 600
    text = build_prompt("the small striped star moving left", 1, 4)
    pieces = tok.tokenize(text)
    assert pieces.count("<IMG_CONTEXT>") == 4 and pieces.count("<TIME_CONTEXT>") == 1
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.decode(tok("a giraffe")["input_ids"]) == "a giraffe"  # unseen words fall back to bytes


def test_saved_files_load_through_autotokenizer_like_an_export(tmp_path):
    save_synthetic_tokenizer(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    fresh = build_synthetic_tokenizer()
    assert loaded.get_vocab() == fresh.get_vocab()
    assert SpecialTokenIds.from_tokenizer(loaded) == SpecialTokenIds.from_tokenizer(fresh)
    text = build_prompt("the red circle", 1, 16) + "Sure, [SEG].<|im_end|>"
    assert loaded(text)["input_ids"] == fresh(text)["input_ids"]
