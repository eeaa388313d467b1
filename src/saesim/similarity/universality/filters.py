"""Latent filters applied before pairing: dead or rare latents, junk-token latents.

Lan et al. (2024) drop latents that do not carry a concept: those that never
(or almost never) fire, and those whose top-5 activating tokens are mostly
non-concept tokens (BOS, punctuation, whitespace).  Each filter returns a
boolean mask over latents (True = remove), so the caller can report counts.
"""

from __future__ import annotations

import unicodedata
from typing import Iterable, Sequence

import numpy as np

from saesim.similarity.universality.codes import LatentStats, SparseCodes


def rare_latents(stats: LatentStats, min_freq: float) -> np.ndarray:
    """True for latents that are dead or fire on fewer than ``min_freq`` of the tokens."""
    freq = stats.firing_frequency
    return (stats.fire_counts == 0) | (freq < min_freq)


def is_junk_text(text: str) -> bool:
    """True when a decoded token is empty or only whitespace, punctuation or control characters."""
    stripped = text.strip()
    if not stripped:
        return True
    return all(unicodedata.category(ch)[0] in "PZC" for ch in stripped)


def junk_token_ids(vocabulary: Sequence[str], extra_ids: Iterable[int] = ()) -> np.ndarray:
    """Token ids whose decoded text is junk (see :func:`is_junk_text`), plus ``extra_ids``.

    ``vocabulary[i]`` must be the *decoded* text of token i (e.g.
    ``tokenizer.decode([i])``, so that byte-level markers such as GPT-2's
    ``"Ġ"`` appear as spaces).  Pass BOS/EOS/pad ids as ``extra_ids``.
    """
    ids = {i for i, text in enumerate(vocabulary) if is_junk_text(text)}
    ids.update(int(i) for i in extra_ids)
    return np.array(sorted(ids), dtype=np.int64)


def top_activating_rows(codes: SparseCodes, n_top: int = 5, block_nnz: int = 1 << 22) -> np.ndarray:
    """``[n_latents, n_top]`` token rows of each latent's highest activations, descending.

    Padded with -1 for latents that fire on fewer than ``n_top`` tokens.
    Processed in blocks of latents holding about ``block_nnz`` nonzeros.
    """
    lat = codes.as_latent_major().matrix
    n_latents = lat.shape[0]
    out = np.full((n_latents, n_top), -1, dtype=np.int64)
    indptr = lat.indptr
    start = 0
    while start < n_latents:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), n_latents)
        lo, hi = int(indptr[start]), int(indptr[stop])
        if hi > lo:
            seg = np.repeat(np.arange(start, stop), np.diff(indptr[start : stop + 1]))
            order = np.lexsort((-lat.data[lo:hi], seg))
            seg_sorted = seg[order]
            rank = np.arange(hi - lo) - (indptr[seg_sorted] - lo)
            take = rank < n_top
            out[seg_sorted[take], rank[take]] = lat.indices[lo:hi][order[take]]
        start = stop
    return out


def junk_dominated_latents(codes: SparseCodes, junk_rows: np.ndarray, n_top: int = 5) -> np.ndarray:
    """True for latents whose top-``n_top`` activating tokens are mostly junk.

    ``junk_rows[t]`` says whether token row t is junk (BOS, punctuation,
    whitespace, ...).  "Mostly" means more than half of the top tokens the
    latent has (3 of 5); latents that never fire are not flagged here (the
    rare filter removes them).
    """
    junk_rows = np.asarray(junk_rows, dtype=bool)
    top = top_activating_rows(codes, n_top)
    present = top >= 0
    n_junk = (junk_rows[np.where(present, top, 0)] & present).sum(axis=1)
    return 2 * n_junk > present.sum(axis=1)
