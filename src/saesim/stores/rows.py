"""Which rows of an activation store the SAEs, their evaluation and the later stages use.

SAE training, its held-out evaluation, the null store, co-activation, geometry, transfer and
downstream loss all select rows the same way: without excluded token positions (e.g. BOS;
token stores only) and, with ``exclude_norm_above``, without norm outliers; evaluation holds
out the first ``eval_rows`` of those rows (:func:`split_rows`).
"""

from __future__ import annotations

import numpy as np

from saesim.stores.activation_store import ActivationStore
from saesim.errors import SaesimError


def row_norms(store: ActivationStore, chunk_rows: int = 8192) -> np.ndarray:
    """L2 norm of every activation row, streamed in chunks."""
    norms = np.empty(store.n_rows, dtype=np.float64)
    for start, block in store.iter_chunks(chunk_rows):
        norms[start : start + len(block)] = np.linalg.norm(block.astype(np.float64), axis=1)
    return norms


def norm_outlier_rows(norms: np.ndarray, eligible: np.ndarray, factor: float) -> np.ndarray:
    """Rows whose norm exceeds ``factor`` x the median norm of the eligible rows.

    Mid-depth residual streams of language models carry "massive activations"
    (Sun et al. 2024) on a handful of tokens, with norms 10-100x the median;
    a few such rows can hold most of the variance and dominate the MSE.
    """
    return norms > norm_cut(norms, eligible, factor)


def norm_cut(norms: np.ndarray, eligible: np.ndarray, factor: float) -> float:
    """The largest row norm kept by ``exclude_norm_above=factor``: ``factor`` x the median eligible norm."""
    return float(factor * np.median(norms[eligible]))


def mean_row(store: ActivationStore, row_mask: np.ndarray, chunk_rows: int = 8192) -> np.ndarray:
    """Mean of the rows selected by ``row_mask``, accumulated in float64 chunk by chunk."""
    total = np.zeros(store.d, dtype=np.float64)
    for start, block in store.iter_chunks(chunk_rows):
        total += block[row_mask[start : start + len(block)]].astype(np.float64).sum(0)
    return total / max(1, int(row_mask.sum()))


def eligible_rows(store: ActivationStore, exclude_positions=(), exclude_norm_above: float | None = None) -> np.ndarray:
    """Mask of the rows SAE training and evaluation may use: without the excluded positions
    (e.g. BOS; token stores only) and, with ``exclude_norm_above``, without norm outliers."""
    eligible = np.ones(store.n_rows, dtype=bool)
    if exclude_positions and store.has_tokens:
        eligible &= ~np.isin(store.row_array("positions"), list(exclude_positions))
    if exclude_norm_above is not None:
        eligible &= ~norm_outlier_rows(row_norms(store), eligible, exclude_norm_above)
    return eligible


def split_rows(store: ActivationStore, spec) -> tuple[np.ndarray, np.ndarray]:
    """Masks of training rows and held-out evaluation rows of the SAE ``spec``
    (a :class:`saesim.saes.training.SAESpec`: its ``eval_rows``, ``exclude_positions`` and
    ``exclude_norm_above``).

    The first ``eval_rows`` eligible rows are held out for evaluation, the same
    for every SAE on this store; excluded positions (e.g. BOS) and, with
    ``exclude_norm_above``, norm outliers are in neither. ``eval_rows`` may be
    at most a fifth of the eligible rows (refused otherwise, never capped).
    """
    eligible = eligible_rows(store, spec.exclude_positions, spec.exclude_norm_above)
    idx = np.flatnonzero(eligible)
    if spec.eval_rows > len(idx) // 5:
        raise SaesimError(
            f"{store.path}: sae.training.eval_rows={spec.eval_rows} is more than a fifth of the "
            f"{len(idx)} rows this SAE may use; at most {len(idx) // 5}"
        )
    n_eval = spec.eval_rows
    eval_mask = np.zeros_like(eligible)
    eval_mask[idx[:n_eval]] = True
    return eligible & ~eval_mask, eval_mask
