"""Stage 4, compare: every similarity metric between two SAEs at once, against its baselines.

:func:`compare_decoders` runs the scan or dense matrix (:mod:`~saesim.similarity.scan`),
the matching and shared latents (:mod:`~saesim.similarity.matching`) and the random
baseline (:mod:`~saesim.similarity.baseline`); :func:`excess_over_null` sets a
comparison against a trained null pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saesim.errors import SaesimError
from saesim.registry.metrics import excess_or_none, ratio_or_none

from saesim.similarity.baseline import random_decoder_baseline
from saesim.similarity.matching import MatchingResult, SharedLatentsResult, _max_and_matching, shared_latents
from saesim.similarity.options import ComparisonOptions
from saesim.similarity.scan import (
    MaxCosineResult,
    _as_matrix,
    _check_pair,
    _key,
    best_match_frac_above,
    frac_above,
)

SCALAR_METRICS = ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac")
"""Scalar keys of a :func:`compare_decoders` result that get a random-decoder ``baseline`` and ``ratio``."""


def compare_decoders(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any = None,
    enc_b: Any = None,
    *,
    options: ComparisonOptions | None = None,
    with_baseline: bool = True,
    return_arrays: bool = False,
    **overrides: Any,
):
    """All similarity metrics between two SAEs, as a JSON-able dict.

    ``dec_*`` are decoders ``W_dec`` [n, d]; ``enc_*`` (optional) encoders
    ``W_enc`` [d, n], needed only for ``shared_latents_frac``. Fractions are
    over the smaller SAE's latents. ``options`` (a :class:`ComparisonOptions`,
    its defaults when None; single fields of it as keywords override it, e.g.
    ``memory_budget_mb=256``) hold the thresholds, budget, device and baseline
    settings; rows are scored by |cos| (signed cosine: :func:`saesim.similarity.suites.compare_pair`).
    With ``with_baseline`` the same metrics on random SAEs of the same shapes go
    under ``baseline`` and value / baseline under ``ratio`` (see
    :func:`random_decoder_baseline`). With ``return_arrays`` returns ``(dict, arrays)``
    where ``arrays`` is :func:`per_latent_arrays` of the comparison.
    """
    o = ComparisonOptions.with_overrides(options, overrides, "compare_decoders")
    if o.cosine != "abs":
        raise SaesimError(f"compare_decoders scores rows by |cos|, got cosine={o.cosine!r}; "
                          "saesim.similarity.suites.compare_pair scores by signed cosine")
    thresholds, shared_threshold, memory_budget_mb, top_m, device = (
        o.thresholds, o.shared_threshold, o.memory_budget_mb, o.top_m, o.device)
    A = _as_matrix(dec_a, "A decoder")
    B = _as_matrix(dec_b, "B decoder")
    _check_pair(A, B)
    n_a, n_b, d = A.shape[0], B.shape[0], A.shape[1]
    if (enc_a is None) != (enc_b is None):
        raise SaesimError("shared latents need both encoders (got only one)")
    mx, match = _max_and_matching(A, B, memory_budget_mb, top_m, device)

    shared = None
    if enc_a is not None:
        shared = shared_latents(A, B, enc_a, enc_b, options=o, dec_matching=match)

    small = min(n_a, n_b)
    keys = [_key(t) for t in thresholds]
    res: dict[str, Any] = {
        "n_a": int(n_a),
        "n_b": int(n_b),
        "d": int(d),
        "mmcs": mx.mmcs,
        "mmcs_a_to_b": mx.mmcs_a_to_b,
        "mmcs_b_to_a": mx.mmcs_b_to_a,
        "hungarian_mean_cos": match.mean_matched_cos,
        "frac_matched_above": frac_above(match.cos, thresholds, denominator=small),
        "frac_best_match_above": best_match_frac_above(mx, thresholds),
        "shared_latents_frac": None if shared is None else shared.frac,
        "shared_threshold": float(shared_threshold),
        "matching_exact": bool(match.exact),
        "top_m": None if match.exact else int(top_m),
        "thresholds": keys,
    }
    if with_baseline:
        base = random_decoder_baseline(n_a, n_b, d, options=o, with_encoders=enc_a is not None)
        if enc_a is None:
            base["shared_latents_frac"] = None
        res["baseline"] = base
        res["ratio"] = {k: ratio_or_none(res[k], base[k]) for k in SCALAR_METRICS}
    if return_arrays:
        return res, per_latent_arrays(mx, match, shared)
    return res


#: Metrics of :func:`compare_decoders` that :func:`excess_over_null` reports: scalars and threshold dicts.
NULL_METRICS = SCALAR_METRICS + ("frac_matched_above", "frac_best_match_above")
"""Keys that :func:`excess_over_null` compares with the trained null: ``(value - null) / (1 - null)``."""


def excess_over_null(res: dict[str, Any], null_res: dict[str, Any]) -> dict[str, Any]:
    """Each metric of a comparison against the same metric on a null pair.

    ``res`` and ``null_res`` are :func:`compare_decoders` outputs: the real
    pair, and a pair of SAEs trained the same way on data with no sparse
    features (e.g. Gaussian data of the same covariance). For every metric m
    of :data:`NULL_METRICS` returns ``m_null`` (the null pair's value) and
    ``m_excess`` = (m - m_null) / (1 - m_null): 0 at the null, 1 for a perfect
    pair. Threshold fractions give dicts keyed like the metric's. None where
    either value is missing or the null is 1.

    Both must be scored alike (the same cosine, thresholds, shared-latent
    threshold): a one-line :class:`SaesimError` otherwise, never an excess of
    a signed value over a |cos| null.
    """
    for key, default in (("cosine", "abs"), ("thresholds", None), ("shared_threshold", None)):
        got, null_got = res.get(key, default), null_res.get(key, default)
        if got != null_got:
            raise SaesimError(f"the null pair was scored with {key}={null_got!r} but the real pair with "
                              f"{key}={got!r}: score both alike")
    out: dict[str, Any] = {}
    for m in NULL_METRICS:
        v, n = res.get(m), null_res.get(m)
        if isinstance(v, dict) or isinstance(n, dict):
            v, n = v or {}, n or {}
            out[f"{m}_null"] = {k: n.get(k) for k in v}
            out[f"{m}_excess"] = {k: excess_or_none(v[k], n.get(k)) for k in v}
        else:
            out[f"{m}_null"] = None if n is None else float(n)
            out[f"{m}_excess"] = excess_or_none(v, n)
    return out


def per_latent_arrays(
    mx: MaxCosineResult,
    match: MatchingResult | None = None,
    shared: SharedLatentsResult | None = None,
) -> dict[str, np.ndarray]:
    """Per-latent results as named arrays (what ``saesim compare --out`` writes)."""
    out = {
        "best_b_for_a": mx.best_b_for_a,
        "best_cos_a": mx.best_cos_a,
        "best_a_for_b": mx.best_a_for_b,
        "best_cos_b": mx.best_cos_b,
    }
    if match is not None:
        out["matching_rows"] = match.rows
        out["matching_cols"] = match.cols
        out["matching_cos"] = match.cos
    if shared is not None:
        out["shared_mask_a"] = shared.mask
    return out

