"""Token alignment: same-tokenizer row check and character-offset alignment."""

import numpy as np
import pytest

from saesim.stores.activation_store import StoreWriter
from saesim.errors import SaesimError
from saesim.similarity.universality import align_by_char_offsets, check_aligned_tokens


def test_char_offset_alignment_by_hand():
    # "Hello world!" | "ok."
    ends_a = [np.array([0, 5, 11, 12]), np.array([2, 3])]  # BOS (zero width), Hello, " world", "!" | ok, .
    ends_b = [np.array([3, 5, 9, 12]), np.array([1, 3])]  # Hel, lo, " wor", "ld!" | o, "k."
    al = align_by_char_offsets(ends_a, ends_b)
    np.testing.assert_array_equal(al.rows_a, [1, 3, 5])  # Hello, "!", "."
    np.testing.assert_array_equal(al.rows_b, [1, 3, 5])  # lo, "ld!", "k."
    assert al.fraction_kept_a == pytest.approx(3 / 6)
    assert al.fraction_kept_b == pytest.approx(3 / 6)


def test_repeated_end_offset_uses_the_last_token_and_explicit_rows():
    # a multi-byte character split over two tokens of B: both end at offset 4
    ends_a = [np.array([2, 4, 6])]
    ends_b = [np.array([2, 4, 4, 6])]
    al = align_by_char_offsets(ends_a, ends_b, rows_a=[np.array([10, 11, 12])], rows_b=[np.array([20, 21, 22, 23])])
    np.testing.assert_array_equal(al.rows_a, [10, 11, 12])
    np.testing.assert_array_equal(al.rows_b, [20, 22, 23])
    assert al.fraction_kept_b == pytest.approx(3 / 4)


def test_bad_offsets_are_refused():
    with pytest.raises(SaesimError, match="document 1: end offsets decrease at token 2"):
        align_by_char_offsets([np.array([1]), np.array([1, 3, 2])], [np.array([1]), np.array([3])])
    with pytest.raises(SaesimError, match="different numbers of documents"):
        align_by_char_offsets([np.array([1])], [])


def write_store(path, token_ids, d=3):
    n = len(token_ids)
    with StoreWriter(path, d, with_tokens=True, chunk_rows=8) as w:
        w.append(
            np.zeros((n, d), np.float32),
            token_ids=np.asarray(token_ids),
            positions=np.arange(n) % 5,
            context_ids=np.arange(n) // 5,
        )
    return path


def test_same_tokenizer_check(tmp_path):
    tokens = np.arange(20) % 7
    a = write_store(tmp_path / "a.h5", tokens)
    b = write_store(tmp_path / "b.h5", tokens)
    assert check_aligned_tokens(a, b) == 20
    bad = tokens.copy()
    bad[13] = 99
    c = write_store(tmp_path / "c.h5", bad)
    with pytest.raises(SaesimError, match=r"a\.h5 and .*c\.h5: token_ids differ at row 13"):
        check_aligned_tokens(a, c, chunk_rows=5)
    d = write_store(tmp_path / "d.h5", tokens[:19])
    with pytest.raises(SaesimError, match="20 vs 19 rows"):
        check_aligned_tokens(a, d)
