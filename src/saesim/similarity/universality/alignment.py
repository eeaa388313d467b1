"""Token alignment between two activation stores.

Same tokenizer: the stores must hold the same tokens row for row; checked by
comparing ``token_ids``.  Different tokenizers: a token of A and a token of B
are aligned when both end at the same character offset of the same document;
only those rows are compared.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from saesim.stores.activation_store import ActivationStore, open_store
from saesim.errors import SaesimError


def _as_store(store: ActivationStore | str | os.PathLike) -> ActivationStore:
    return store if isinstance(store, ActivationStore) else open_store(store)


def check_aligned_tokens(
    store_a: ActivationStore | str | os.PathLike,
    store_b: ActivationStore | str | os.PathLike,
    chunk_rows: int = 1 << 20,
) -> int:
    """Check that two stores hold the same tokens row for row; return the number of rows.

    Stores without ``token_ids`` (toy models) are only checked for equal row counts.
    Raises :class:`SaesimError` naming both files and the first mismatching row.
    """
    a, b = _as_store(store_a), _as_store(store_b)
    if a.n_rows != b.n_rows:
        raise SaesimError(f"{a.path} and {b.path}: stores are not aligned ({a.n_rows} vs {b.n_rows} rows)")
    if a.has_tokens != b.has_tokens:
        raise SaesimError(f"{a.path} and {b.path}: only one of the stores has token_ids; cannot check alignment")
    if not a.has_tokens:
        return a.n_rows
    ta, tb = a.file["token_ids"], b.file["token_ids"]
    for start in range(0, a.n_rows, chunk_rows):
        stop = min(start + chunk_rows, a.n_rows)
        da, db = ta[start:stop], tb[start:stop]
        diff = np.flatnonzero(da != db)
        if diff.size:
            row = start + int(diff[0])
            raise SaesimError(
                f"{a.path} and {b.path}: token_ids differ at row {row} "
                f"({int(da[diff[0]])} vs {int(db[diff[0]])}); stores are not aligned row for row"
            )
    return a.n_rows


@dataclass(frozen=True)
class TokenAlignment:
    """Row index pairs where tokenizations A and B end a token at the same character."""

    rows_a: np.ndarray  # int64, strictly increasing
    rows_b: np.ndarray  # int64, strictly increasing, same length
    n_rows_a: int  # tokens of A considered
    n_rows_b: int

    @property
    def n_aligned(self) -> int:
        return int(self.rows_a.size)

    @property
    def fraction_kept_a(self) -> float:
        return self.n_aligned / self.n_rows_a if self.n_rows_a else 0.0

    @property
    def fraction_kept_b(self) -> float:
        return self.n_aligned / self.n_rows_b if self.n_rows_b else 0.0


def _last_of_each_offset(ends: np.ndarray, doc: int, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Unique end offsets and, for each, the position of the last token ending there."""
    if ends.ndim != 1:
        raise SaesimError(f"tokenizer {side}, document {doc}: end offsets must be 1-D")
    if ends.size and np.any(np.diff(ends) < 0):
        bad = int(np.flatnonzero(np.diff(ends) < 0)[0]) + 1
        raise SaesimError(f"tokenizer {side}, document {doc}: end offsets decrease at token {bad}")
    last = np.ones(ends.size, dtype=bool)
    last[:-1] = ends[1:] != ends[:-1]
    pos = np.flatnonzero(last)
    return ends[pos], pos


def align_by_char_offsets(
    ends_a: Sequence[np.ndarray],
    ends_b: Sequence[np.ndarray],
    rows_a: Sequence[np.ndarray] | None = None,
    rows_b: Sequence[np.ndarray] | None = None,
) -> TokenAlignment:
    """Pair the tokens of two tokenizations of the same documents by shared end offsets.

    ``ends_a[d]`` are the character end offsets of tokenizer A's tokens of
    document d, in order (non-decreasing); likewise ``ends_b``.  A token of A
    and a token of B are aligned when they end at the same character of the
    same document.  When several tokens of one tokenization end at the same
    offset (e.g. a zero-width BOS, or a multi-byte character split in two),
    the last of them is used.  ``rows_a[d]`` give the store rows of those
    tokens; by default the documents' tokens occupy consecutive rows in order.
    """
    if len(ends_a) != len(ends_b):
        raise SaesimError(f"tokenizations cover different numbers of documents ({len(ends_a)} vs {len(ends_b)})")
    for side, rows, ends in (("A", rows_a, ends_a), ("B", rows_b, ends_b)):
        if rows is not None and len(rows) != len(ends):
            raise SaesimError(f"tokenizer {side}: {len(rows)} row arrays for {len(ends)} documents")
    out_a, out_b = [], []
    base_a = base_b = 0
    total_a = total_b = 0
    for d, (ea, eb) in enumerate(zip(ends_a, ends_b)):
        ea = np.asarray(ea, dtype=np.int64)
        eb = np.asarray(eb, dtype=np.int64)
        ua, pa = _last_of_each_offset(ea, d, "A")
        ub, pb = _last_of_each_offset(eb, d, "B")
        _, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
        ra = base_a + np.arange(ea.size) if rows_a is None else np.asarray(rows_a[d], dtype=np.int64)
        rb = base_b + np.arange(eb.size) if rows_b is None else np.asarray(rows_b[d], dtype=np.int64)
        if ra.size != ea.size or rb.size != eb.size:
            raise SaesimError(f"document {d}: row arrays and end offsets differ in length")
        out_a.append(ra[pa[ia]])
        out_b.append(rb[pb[ib]])
        base_a += ea.size
        base_b += eb.size
        total_a += ea.size
        total_b += eb.size
    rows_out_a = np.concatenate(out_a) if out_a else np.zeros(0, dtype=np.int64)
    rows_out_b = np.concatenate(out_b) if out_b else np.zeros(0, dtype=np.int64)
    for side, r in (("A", rows_out_a), ("B", rows_out_b)):
        if r.size > 1 and np.any(np.diff(r) <= 0):
            raise SaesimError(f"tokenizer {side}: aligned rows are not strictly increasing; check the row arrays")
    return TokenAlignment(rows_out_a, rows_out_b, total_a, total_b)
