"""Logit lens of SAE latents: which tokens a latent's decoder row promotes and suppresses.

A decoder row ``d`` (a direction in the residual stream) is put through the model's final
norm and unembedding as if it were the residual stream at the last layer:

    logits = W_U^T (w_norm * d / rms(d)),    rms(d) = sqrt(mean_i d_i^2)

which is exactly a LLaMA / SmolLM2 final ``RMSNorm`` (no mean subtraction, no bias; its
epsilon is left out, it changes no ranking) followed by the unembedding.  For a LayerNorm
model (GPT-2) pass ``center=True``: ``d`` is centred first, as LayerNorm does; its bias adds
the same vector to every latent's logits and is left out.  The scale ``1 / rms(d)`` is
positive, so the ranking of tokens is that of ``W_U^T (w_norm * d)``; with it the values are
the logits the model would output if the residual stream were ``d``.
"""

from __future__ import annotations

import numpy as np

from saesim.errors import SaesimError

__all__ = ["logit_lens"]


def logit_lens(decoder_rows: np.ndarray, w_norm: np.ndarray | None, W_U: np.ndarray, k: int, *,
               center: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top and bottom ``k`` tokens of each decoder row through the final norm and the unembedding.

    ``decoder_rows`` ``[n, d_model]``, ``w_norm`` ``[d_model]`` (the final norm's weight; None: ones),
    ``W_U`` ``[d_model, d_vocab]`` (TransformerLens layout; a Hugging Face ``lm_head.weight`` is its
    transpose). Returns ``(top_ids, top_vals, bottom_ids, bottom_vals)``, each ``[n, k]``: the highest
    logits in decreasing order and the lowest in increasing order (ties by token id). Zero rows give
    zero logits. Memory: ``n * d_vocab`` float32 logits at a time (call it with the rows that get cards).
    """
    rows = np.asarray(decoder_rows, dtype=np.float32)
    W_U = np.asarray(W_U)
    if rows.ndim != 2 or W_U.ndim != 2 or rows.shape[1] != W_U.shape[0]:
        raise SaesimError(f"logit lens: decoder rows {rows.shape} and W_U {W_U.shape} must share d_model (W_U is [d_model, d_vocab])")
    if w_norm is not None and np.shape(w_norm) != (rows.shape[1],):
        raise SaesimError(f"logit lens: final norm weight {np.shape(w_norm)} must be [{rows.shape[1]}]")
    k = int(min(k, W_U.shape[1]))
    if center:
        rows = rows - rows.mean(axis=1, keepdims=True)
    rms = np.sqrt((rows.astype(np.float64) ** 2).mean(axis=1, keepdims=True))
    normed = np.divide(rows, rms, out=np.zeros_like(rows), where=rms > 0).astype(np.float32)
    if w_norm is not None:
        normed = normed * np.asarray(w_norm, dtype=np.float32)
    logits = normed @ W_U.astype(np.float32, copy=False)  # [n, d_vocab]
    take = np.take_along_axis
    if k == 0:
        empty = np.zeros((len(rows), 0))
        return empty.astype(np.int64), empty, empty.astype(np.int64), empty
    top_ids, bottom_ids = _extreme(-logits, k), _extreme(logits, k)
    return top_ids, take(logits, top_ids, axis=1), bottom_ids, take(logits, bottom_ids, axis=1)


def _extreme(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the ids of the ``k`` smallest scores in increasing order, ties by id (a partition, then a
    sort of the candidates: every score equal to the k-th is a candidate, so ties at the cut go by id too)."""
    out = np.empty((len(scores), k), dtype=np.int64)
    kth = np.partition(scores, k - 1, axis=1)[:, k - 1 : k]
    for i, row in enumerate(scores):
        cand = np.flatnonzero(row <= kth[i])
        out[i] = cand[np.lexsort((cand, row[cand]))][:k]
    return out
