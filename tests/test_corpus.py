"""Offline corpus: stdlib docstrings, fixed-length contexts, determinism."""

import itertools

import numpy as np
import pytest

from saesim.sources import corpus
from saesim.errors import SaesimError


def byte_encoder(text: str):
    """Tokenizer stand-in: one token per UTF-8 byte (ids 3..258), offsets of each character."""
    ids, offsets = [], []
    for i, ch in enumerate(text):
        for byte in ch.encode():
            ids.append(byte + 3)
            offsets.append(i)
    return ids, offsets


def small_corpus(**kw):
    docs = corpus.iter_stdlib_docstrings(max_docs=200)
    return corpus.tokenize_documents(docs, byte_encoder, n_ctx=32, n_contexts=40, bos_id=1, separator_id=2, **kw)


def test_stdlib_docstrings_are_found_in_fixed_order():
    first = list(itertools.islice(corpus.iter_stdlib_docstrings(), 50))
    again = list(itertools.islice(corpus.iter_stdlib_docstrings(), 50))
    assert first == again and len(first) == 50
    assert all(len(text) >= 40 for _, text in first)
    assert all(":" in name and ".py" in name for name, _ in first)
    assert not any(name.startswith(("test/", "site-packages/")) for name, _ in first)


def test_contexts_have_bos_and_provenance():
    c = small_corpus()
    assert c.tokens.shape == (40, 32) and c.tokens.dtype == np.int32
    assert (c.tokens[:, 0] == 1).all()
    assert (c.doc_ids[:, 0] == -1).all() and (c.char_offsets[:, 0] == -1).all()
    # token ids and offsets point back into the documents they came from
    docs = dict(corpus.iter_stdlib_docstrings(max_docs=200))
    texts = [docs[name] for name in c.doc_names]
    for ctx in range(5):
        for pos in range(1, 32):
            doc, off = c.doc_ids[ctx, pos], c.char_offsets[ctx, pos]
            if doc >= 0:
                assert c.tokens[ctx, pos] - 3 in texts[doc][off].encode()
            else:
                assert c.tokens[ctx, pos] == 2


def test_same_bytes_twice():
    a, b = small_corpus(), small_corpus()
    assert a.tokens.tobytes() == b.tokens.tobytes()
    assert a.content_hash() == b.content_hash()


def test_running_out_of_documents_is_a_clear_error():
    docs = [("one", "short text")]
    with pytest.raises(SaesimError, match="ran out"):
        corpus.tokenize_documents(docs, byte_encoder, n_ctx=16, n_contexts=4, bos_id=1)


def test_save_and_load_round_trip(tmp_path):
    c = small_corpus()
    c.meta["source"] = "stdlib"
    path = corpus.save_corpus(tmp_path / "corpus.npz", c)
    back = corpus.load_corpus(path)
    np.testing.assert_array_equal(back.tokens, c.tokens)
    np.testing.assert_array_equal(back.doc_ids, c.doc_ids)
    assert back.doc_names == c.doc_names and back.meta == c.meta
    with pytest.raises(SaesimError, match="does not exist"):
        corpus.load_corpus(tmp_path / "missing.npz")


def test_hf_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SaesimError, match="Hugging Face hub"):
        next(corpus.iter_hf_dataset("NeelNanda/pile-10k"))
