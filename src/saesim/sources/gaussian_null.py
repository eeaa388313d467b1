"""The "no-feature" null: Gaussian data with the same mean and covariance as a store.

SAEs trained on data with the same second-order statistics as the real activations,
but nothing sparse in them, still agree across seeds well above random decoders: part
of any cross-seed stability is the covariance, not shared features. This module builds
that null data set as an activation store of its own:

* :func:`streaming_moments` — mean and full covariance of the selected rows in one
  streaming pass (float64, chunk by chunk, merged with Chan et al.'s pairwise update so
  a large shared offset costs no precision);
* :func:`gaussian_factor` — a matrix ``A`` with ``A @ A.T == cov`` (symmetric eigen-
  decomposition, so rank-deficient covariances such as the toy model's are fine);
* :func:`iter_gaussian_rows` — deterministic chunks ``mean + z @ A.T``, ``z`` standard
  normal from one seeded :class:`numpy.random.Generator`;
* :func:`write_null_store` — all of it from a source store into a new store with the
  same number of rows, ``d``, dtype and chunking (complete-or-absent, content-hashed).

The rows fitted are those SAE training may use (:func:`saesim.stores.rows.eligible_rows`:
excluded positions and norm outliers left out, training and held-out rows alike).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from saesim.stores.activation_store import ActivationStore, StoreWriter, open_store
from saesim.errors import SaesimError

#: name of the group in a null store that keeps the fitted moments
NULL_GROUP = "null_model"


def streaming_moments(store: ActivationStore, row_mask: np.ndarray | None = None, chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mean [d], covariance [d, d], n)`` of the rows selected by ``row_mask``, float64.

    One pass over the store in chunks (memory: one chunk plus two ``d x d`` matrices).
    The covariance is the maximum-likelihood one (divided by ``n``), which is what a
    Gaussian with these moments reproduces.
    """
    d = store.d
    n = 0
    mean = np.zeros(d, dtype=np.float64)
    scatter = np.zeros((d, d), dtype=np.float64)  # sum of outer products of centred rows
    for start, block in store.iter_chunks(chunk_rows):
        if row_mask is not None:
            block = block[row_mask[start : start + len(block)]]
        m = len(block)
        if m == 0:
            continue
        x = block.astype(np.float64)
        chunk_mean = x.mean(axis=0)
        xc = x - chunk_mean
        delta = chunk_mean - mean
        total = n + m
        scatter += xc.T @ xc + np.outer(delta, delta) * (n * m / total)
        mean += delta * (m / total)
        n = total
    if n == 0:
        raise SaesimError(f"{store.path}: no rows left to fit the null model after the row exclusions")
    cov = scatter / n
    return mean, (cov + cov.T) / 2, n


def gaussian_factor(cov: np.ndarray, rel_tol: float = 1e-12) -> tuple[np.ndarray, int]:
    """``(A, rank)`` with ``A @ A.T`` equal to ``cov`` (up to rounding).

    From the symmetric eigendecomposition, so a singular covariance (data in a subspace)
    works; eigenvalues below ``rel_tol`` x the largest (rounding noise, slightly negative
    ones included) are set to zero and not counted in the rank.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise SaesimError(f"covariance must be a square matrix, got shape {cov.shape}")
    w, v = np.linalg.eigh(cov)
    cut = rel_tol * max(float(w.max()), 0.0)
    keep = w > cut
    w = np.where(keep, w, 0.0)
    return v * np.sqrt(w), int(keep.sum())


def iter_gaussian_rows(mean: np.ndarray, factor: np.ndarray, n_rows: int, *, seed: int, chunk_rows: int = 8192) -> Iterator[np.ndarray]:
    """Deterministic float64 chunks of rows ``mean + z @ factor.T`` (``z`` standard normal).

    The rows depend only on ``(mean, factor, n_rows, seed, chunk_rows)``.
    """
    rng = np.random.default_rng(seed)
    k = factor.shape[1]
    for start in range(0, n_rows, chunk_rows):
        rows = min(chunk_rows, n_rows - start)
        yield mean + rng.standard_normal((rows, k)) @ factor.T


def write_null_store(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    exclude_positions=(),
    exclude_norm_above: float | None = None,
    seed: int = 0,
) -> dict:
    """Write the Gaussian null of ``source`` to ``out``; return a summary.

    Same number of rows, ``d``, dtype and chunk size as the source; the fitted mean and
    covariance are kept in the group ``/null_model``, the source's name and content hash
    in the attributes (``source_store``, ``source_content_hash``).
    """
    from saesim.stores.rows import eligible_rows

    out = Path(out)
    with open_store(source) as store:
        mask = eligible_rows(store, tuple(exclude_positions), exclude_norm_above)
        mean, cov, n_fit = streaming_moments(store, mask)
        factor, rank = gaussian_factor(cov)
        src_attrs = store.attrs
        dtype = store.activations.dtype.name
        chunk_rows = store.chunk_rows()
        n_rows, d = store.n_rows, store.d
        source_hash = store.content_hash
    attrs = {
        "model": src_attrs.get("model", ""),
        "hook": src_attrs.get("hook", ""),
        "source_store": str(source),
        "source_content_hash": source_hash,
        "null_seed": int(seed),
        "n_fit_rows": int(n_fit),
        "covariance_rank": rank,
        "exclude_positions": list(exclude_positions),
        "exclude_norm_above": exclude_norm_above,  # JSON: null when no row is dropped for its norm
    }
    with StoreWriter(out, d, dtype=dtype, chunk_rows=chunk_rows, attrs=attrs) as writer:
        for block in iter_gaussian_rows(mean, factor, n_rows, seed=seed, chunk_rows=chunk_rows):
            writer.append(block)
        writer.add_group(NULL_GROUP, {"mean": mean, "covariance": cov})
    return {"n_rows": n_rows, "d": d, "dtype": dtype, "n_fit_rows": int(n_fit), "covariance_rank": rank, "trace": float(np.trace(cov))}
