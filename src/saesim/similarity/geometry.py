"""Decoder agreement in three coordinate systems: raw, mean-removed and whitened.

Every decoder metric of :mod:`saesim.similarity` is a cosine in the raw activation space,
and cosines there depend on the activations' geometry: two atoms that both lean on the
activations' mean direction, or on a few high-variance directions, look alike whatever
they encode. This module states two other coordinate systems, built from the store's
mean ``mu`` and covariance ``Sigma`` (one streaming float64 pass:
:func:`saesim.sources.gaussian_null.streaming_moments`, over the rows SAE training may use), and
maps decoder (and encoder) rows into them, so that the *same* bounded scan, matching and
baselines (:func:`saesim.similarity.compare_decoders`, :func:`random_decoder_baseline`)
run on the mapped rows:

* ``raw``: rows as they are (``d`` dimensions).
* ``mean_removed``: rows projected off the mean direction ``u = mu / |mu|``,
  ``d -> d - (d . u) u`` (``d - 1`` dimensions). Encoder rows get the same projection.
* ``whitened``: with ``Sigma = V diag(lam) V^T`` (eigenvalues below
  ``rel_tol`` x the largest dropped: directions the data does not use), the activations'
  whitened coordinates are ``x' = diag(lam)^{-1/2} V^T (x - mu)`` (``r`` = rank
  dimensions). A decoder row is a direction in activation space, ``x = sum_i z_i d_i``,
  so it maps like a difference of activations: ``d' = diag(lam)^{-1/2} V^T d`` (the same
  as ``Sigma^{-1/2} d`` up to the rotation ``V``, which no cosine sees). An encoder row
  ``e`` is read as ``e . x = (diag(lam)^{1/2} V^T e) . x'``, so it maps with the inverse
  transpose, ``e' = diag(lam)^{1/2} V^T e``.

Why this whitening is the principled one: if the store and both SAEs are transformed by
any invertible linear map ``A`` (``x -> A x``, decoders ``d -> A d``, encoders
``e -> A^{-T} e``), the whitened rows change only by one orthogonal matrix
``(A Sigma A^T)^{-1/2} A Sigma^{1/2}``, so every cosine, hence every metric, is unchanged
(tested). Raw cosines are invariant only under orthogonal maps.

Chance levels per space: isotropic random decoders *in that space*, i.e.
:func:`random_decoder_baseline` with ``d`` set to the space's dimension (``d``, ``d - 1``,
``r``); and the trained null's SAEs (trained on the Gaussian twin of the store, which has
the same mean and covariance) mapped with the same transform and compared the same way.

Memory: a mapped copy of each dictionary (``n x dim`` float32, built chunk by chunk of
:data:`CHUNK_ROWS` rows, so row sources such as lazily read encoders are never held
twice) plus ``d x d`` float64 matrices; the scan keeps its own budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from saesim.errors import SaesimError

#: eigenvalues of the covariance at or below this fraction of the largest are dropped when whitening
WHITEN_REL_TOL = 1e-6
#: rows mapped at a time
CHUNK_ROWS = 16384


@dataclass(frozen=True)
class Moments:
    """Mean ``[d]`` and covariance ``[d, d]`` (float64) of the rows SAEs are trained on."""

    mean: np.ndarray
    cov: np.ndarray
    n_rows: int = 0

    def __post_init__(self):
        mean = np.asarray(self.mean, dtype=np.float64)
        cov = np.asarray(self.cov, dtype=np.float64)
        if mean.ndim != 1 or cov.shape != (len(mean), len(mean)):
            raise SaesimError(f"moments: mean must be [d] and covariance [d, d], got {mean.shape} and {cov.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise SaesimError("moments: non-finite mean or covariance")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", (cov + cov.T) / 2)

    @property
    def d(self) -> int:
        return int(len(self.mean))


@dataclass(frozen=True)
class CoordinateMap:
    """How rows map into one coordinate system: ``rows @ dec`` (decoder), ``rows @ enc`` (encoder)."""

    space: str
    dim: int  # dimension of the space (for its isotropic random baseline)
    dec: np.ndarray | None  # [d, k] float64; None: identity
    enc: np.ndarray | None

    def map_rows(self, rows: Any, encoder: bool = False) -> Any:
        """Rows ``[n, d]`` mapped (float32), chunk by chunk; the identity returns ``rows`` itself."""
        m = self.enc if encoder else self.dec
        if m is None:
            return rows
        n = rows.shape[0]
        out = np.empty((n, m.shape[1]), dtype=np.float32)
        for i0 in range(0, n, CHUNK_ROWS):
            block = np.asarray(rows[i0 : i0 + CHUNK_ROWS], dtype=np.float64)
            out[i0 : i0 + len(block)] = block @ m
        return out


def mean_removed_map(moments: Moments) -> CoordinateMap:
    """Projection off the mean direction (the identity, with ``d`` dimensions, if the mean is 0)."""
    d = moments.d
    norm = float(np.linalg.norm(moments.mean))
    if norm == 0.0:
        return CoordinateMap("mean_removed", d, None, None)
    u = moments.mean / norm
    proj = np.eye(d) - np.outer(u, u)
    return CoordinateMap("mean_removed", d - 1, proj, proj)


def whitening_map(moments: Moments, rel_tol: float = WHITEN_REL_TOL) -> CoordinateMap:
    """Whitened coordinates of the covariance's support (see the module docstring)."""
    lam, vec = np.linalg.eigh(moments.cov)
    top = float(lam.max())
    if not top > 0:
        raise SaesimError("moments: covariance is zero; whitened coordinates are undefined")
    keep = lam > rel_tol * top
    lam, vec = lam[keep], vec[:, keep]
    return CoordinateMap("whitened", int(keep.sum()), vec / np.sqrt(lam), vec * np.sqrt(lam))


def coordinate_maps(moments: Moments, rel_tol: float = WHITEN_REL_TOL) -> dict[str, CoordinateMap]:
    """Every coordinate system of :data:`saesim.registry.metrics.COORDINATE_SPACES`, raw first."""
    from saesim.registry.metrics import COORDINATE_SPACES

    maps = {
        "raw": CoordinateMap("raw", moments.d, None, None),
        "mean_removed": mean_removed_map(moments),
        "whitened": whitening_map(moments, rel_tol),
    }
    return {name: maps[name] for name in COORDINATE_SPACES}


def space_dims(moments: Moments, rel_tol: float = WHITEN_REL_TOL) -> dict[str, int]:
    return {name: m.dim for name, m in coordinate_maps(moments, rel_tol).items()}


def compare_in_spaces(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any,
    enc_b: Any,
    moments: Moments,
    *,
    spaces: tuple[str, ...] | None = None,
    rel_tol: float = WHITEN_REL_TOL,
    **kwargs,
) -> dict[str, dict]:
    """:func:`saesim.similarity.compare_decoders` on the mapped rows, per non-raw space.

    ``enc_*`` are encoders ``W_enc`` [d, n] (or None). Returns ``{space: result}`` with the
    space's ``dim`` added; the raw space is the caller's plain comparison.
    """
    from saesim.similarity import compare_decoders

    maps = coordinate_maps(moments, rel_tol)
    names = [s for s in (spaces or maps) if s != "raw"]
    if np.shape(dec_a)[1] != moments.d:
        raise SaesimError(f"moments have d={moments.d}, the decoders d={np.shape(dec_a)[1]}")
    out = {}
    for name in names:
        m = maps[name]
        ea = eb = None
        if enc_a is not None and enc_b is not None:
            ea = m.map_rows(enc_a.T, encoder=True).T
            eb = m.map_rows(enc_b.T, encoder=True).T
        res = compare_decoders(m.map_rows(dec_a), m.map_rows(dec_b), ea, eb, with_baseline=False, **kwargs)
        res["dim"] = int(m.dim)
        out[name] = res
    return out


def baselines_in_spaces(
    n_a: int, n_b: int, moments: Moments, *, raw: dict | None = None, rel_tol: float = WHITEN_REL_TOL, **kwargs
) -> dict[str, dict]:
    """Isotropic random-decoder baselines in each non-raw space (``d`` = the space's dimension).

    The baseline depends only on the shapes, so a space of the raw dimension (a full-rank
    whitening) reuses ``raw`` (the raw baseline, computed with the same ``kwargs``) when given.
    """
    from saesim.similarity import random_decoder_baseline

    out = {}
    for name, dim in space_dims(moments, rel_tol).items():
        if name == "raw":
            continue
        if raw is not None and dim == moments.d:
            res = dict(raw)
        else:
            res = random_decoder_baseline(n_a, n_b, dim, **kwargs)
        res["dim"] = int(dim)
        out[name] = res
    return out


def load_moments(path: Any, exclude_positions=(), exclude_norm_above: float | None = None) -> Moments:
    """The store's moments: read from a null store's ``/null_model`` group (fitted there in one
    streaming pass over the rows SAE training may use), else one streaming pass over ``path``."""
    from saesim.stores.activation_store import open_store
    from saesim.sources.gaussian_null import NULL_GROUP, streaming_moments
    from saesim.stores.rows import eligible_rows

    with open_store(path) as store:
        g = store.group(NULL_GROUP) if NULL_GROUP in store.file else None
        if g is not None and "mean" in g and "covariance" in g:
            return Moments(g["mean"], g["covariance"], int(store.attrs.get("n_fit_rows", 0)))
        mask = eligible_rows(store, tuple(exclude_positions), exclude_norm_above)
        mean, cov, n = streaming_moments(store, mask)
    return Moments(mean, cov, n)


def unit_rows(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """The rows of ``x`` scaled to unit length (zero rows stay zero), as ``dtype`` (None: the
    dtype ``x`` has): the one row normaliser of decoders, features and activations."""
    x = np.asarray(x, dtype=dtype)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def transform_store_rows(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``x @ a.T``: activations (rows) under the linear map ``x -> A x`` (tests of invariance)."""
    return np.asarray(x, dtype=np.float64) @ np.asarray(a, dtype=np.float64).T


def flat_space_values(result: Mapping[str, Any], metrics) -> dict[str, float]:
    """``{<table metric>_<suffix>: value}`` of a pair result's ``spaces`` (NaN where absent)."""
    from saesim.registry.metrics import COORDINATE_SPACES

    out = {}
    spaces = result.get("spaces") or {}
    for space in COORDINATE_SPACES.values():
        if space.name == "raw":
            continue
        r = spaces.get(space.name)
        for m in metrics:
            v = m.value_or_none(r) if r is not None else None
            out[space.column(m.name)] = float("nan") if v is None else float(v)
    return out
