"""Comparing SAE suites: many SAEs, cross-variant cells, feature splitting, signed cosine.

A *suite* is a family of SAEs on the same input space (d): several widths,
sparsities, architectures or hookpoints, as published in Gemma Scope, Llama
Scope or EleutherAI's sparsify runs. Everything here is a pure function of
decoder (and optionally encoder) arrays, built on :mod:`saesim.similarity`:

* :func:`compare_pair`: every metric of
  :func:`saesim.similarity.compare_decoders`, by ``|cos|`` (``cosine="abs"``,
  the default, exactly ``compare_decoders``) or by signed cosine
  (``cosine="signed"``, the matching of Song et al.'s PW-MCC);
* :func:`cross_variant_cell`: one cell of a width x width (or L0, architecture,
  hook) matrix: every decoder metric in both directions, the fraction of A's
  latents whose best match in B reaches 0.7 / 0.8 / 0.9 and of B's in A, and
  the isotropic (random Gaussian) baseline for the same shapes;
* :func:`feature_splitting`: for every latent of a narrow SAE, how many
  latents of a wide one match it at or above a threshold (one-to-many), and
  the fraction of wide latents with no narrow partner;
* :func:`expand_sae_specs`, :func:`describe_sae`, :func:`compare_suite`,
  :func:`format_suite_table`: the pieces of ``saesim compare A B C ...``.

Signed cosine without a second scan
-----------------------------------
The bounded-memory scan (:func:`saesim.similarity.top_abs_cosines`) and the
matchings rank by ``|cos|``. For unit rows ``u, v`` the augmented rows
``u' = [u, 1] / sqrt(2)`` and ``v' = [v, 1] / sqrt(2)`` have
``u'.v' = (1 + cos(u, v)) / 2``, which lies in [0, 1]; so ``|cos(u', v')|``
is an increasing function of the *signed* cosine. Running the |cos| machinery
on augmented rows therefore finds the best partners, the top-m lists and the
one-to-one matching by signed cosine, and ``cos = 2 |cos'| - 1`` maps the
values back (exact up to float32 rounding, about 1e-7). A row of zeros has no
direction: by |cos| it scores 0 (the floor of |cos|), by signed cosine -1 (the
floor of cos). (Song et al.'s code gives zero rows a cosine of 0.)
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from saesim.errors import SaesimError
from saesim.registry.metrics import ratio_or_none
from saesim.workflow.layout import natural_key
from saesim.similarity import (
    DEFAULT_MEMORY_BUDGET_MB,
    DEFAULT_TOP_M,
    SCALAR_METRICS,
    ComparisonOptions,
    MaxCosineResult,
    best_match_frac_above,
    compare_decoders,
    frac_above,
    normalize_rows,
    prob_abs_cosine_below,
    random_decoder_baseline,
    top_abs_cosines,
)
from saesim.similarity.baseline import baseline_summary
from saesim.similarity.options import COSINES, DEFAULT_COSINE

#: thresholds of a cross-variant cell: "fraction of latents whose best match exceeds 0.9 / 0.8 / 0.7"
CELL_THRESHOLDS: tuple[float, ...] = (0.7, 0.8, 0.9)
"""Default thresholds of a cross-variant cell's best-match fractions."""

__all__ = [
    "CELL_THRESHOLDS",
    "COSINES",
    "DEFAULT_COSINE",
    "check_cosine",
    "compare_pair",
    "compare_suite",
    "cross_variant_cell",
    "expand_sae_specs",
    "expected_max_signed_cosine",
    "feature_splitting",
    "format_suite_table",
    "p_best_match_above",
    "describe_sae",
    "signed_cosine_augment",
    "signed_random_baseline",
]


# --------------------------------------------------------------------------
# Signed cosine
# --------------------------------------------------------------------------


def check_cosine(cosine: str) -> str:
    """``cosine`` if it is ``"abs"`` or ``"signed"``; otherwise a one-line :class:`SaesimError`."""
    ComparisonOptions(cosine=cosine)  # the one check, naming the key
    return cosine


def signed_cosine_augment(x: Any) -> np.ndarray:
    """Rows ``[u / |u|, 1]`` (float32, [n, d + 1]); zero rows become all zeros.

    The |cos| between two augmented rows is ``(1 + cos) / 2`` of the original
    rows (see the module docstring), so |cos|-based scans rank by signed cosine.
    """
    u = normalize_rows(x)
    out = np.empty((u.shape[0], u.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = u
    out[:, -1] = (np.linalg.norm(u, axis=1) > 0).astype(np.float32)
    return out


def _to_aug(t: float) -> float:
    """A signed-cosine threshold as a threshold on augmented |cos|."""
    return 0.5 * (1.0 + float(t))


def _from_aug(v: Any) -> Any:
    """Augmented |cos| values back to signed cosines (arrays or floats; None and NaN pass through)."""
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return (2.0 * v.astype(np.float64) - 1.0).astype(v.dtype)
    return 2.0 * float(v) - 1.0


def _signed_cdf(x: np.ndarray, d: int) -> np.ndarray:
    """P(cos <= x) for two independent uniformly random directions in R^d (cos is symmetric about 0)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    f_abs = prob_abs_cosine_below(np.abs(x), d)
    return 0.5 + 0.5 * np.sign(x) * f_abs


def expected_max_signed_cosine(n: int, d: int, grid: int = 40001) -> float:
    """E[max cos] between one direction and ``n`` independent random directions in R^d.

    The signed counterpart of :func:`saesim.similarity.expected_max_abs_cosine`:
    E[X] = int_0^1 P(X > x) dx - int_{-1}^0 P(X <= x) dx with P(X <= x) = F(x)^n.
    """
    x = np.linspace(-1.0, 1.0, grid)
    with np.errstate(divide="ignore"):
        log_f = np.log(_signed_cdf(x, d))
    f_n = np.exp(n * log_f)  # F^n
    pos, neg = x >= 0, x <= 0
    return float(np.trapezoid(1.0 - f_n[pos], x[pos]) - np.trapezoid(f_n[neg], x[neg]))


def p_best_match_above(t: float, n: int, d: int, cosine: str = DEFAULT_COSINE) -> float:
    """P(the best of ``n`` random directions in R^d reaches ``t`` with a given direction).

    The isotropic baseline of "fraction of A's latents whose best match in B
    (``n`` latents) is >= t": ``1 - F(t)^n`` with F the law of |cos|
    (``cosine="abs"``) or of cos (``"signed"``).
    """
    check_cosine(cosine)
    if cosine == "abs":
        f = float(prob_abs_cosine_below(t, d))
    else:
        f = float(_signed_cdf(t, d))
    if f <= 0.0:
        return 1.0
    return max(0.0, float(-np.expm1(n * np.log(f))))


def _key(t: float) -> str:
    return f"{float(t):g}"


def _shared_bound(n_a: int, n_b: int, d: int, shared_threshold: float, with_encoders: bool) -> bool:
    """Whether the expected number of random shared pairs is negligible (< 1e-3), as in the |cos| baseline."""
    p_pair = 1.0 - float(_signed_cdf(shared_threshold, d))
    return (not with_encoders) or (n_a * n_b * p_pair**2 < 1e-3)


def signed_random_baseline(
    n_a: int,
    n_b: int,
    d: int,
    *,
    options: ComparisonOptions | None = None,
    with_encoders: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """:func:`saesim.similarity.random_decoder_baseline` with signed cosines: same keys, same methods.

    Max-type metrics in closed form (:func:`expected_max_signed_cosine`,
    :func:`p_best_match_above`); matching metrics (and shared latents unless
    the expected number of random shared pairs is below 1e-3) averaged over
    ``baseline_draws`` pairs of random Gaussian SAEs, drawn as the |cos| baseline
    draws them, at full size. ``options`` and ``overrides`` as for
    :func:`~saesim.similarity.random_decoder_baseline` (the cosine is signed
    whatever they say). Deterministic given ``seed``.
    """
    o = replace(ComparisonOptions.with_overrides(options, overrides, "signed_random_baseline"), cosine="signed")
    draws, thresholds, shared_threshold = o.baseline_draws, o.thresholds, o.shared_threshold
    if min(n_a, n_b, d) < 1 or draws < 1:
        raise SaesimError(f"random baseline needs positive sizes and draws, got n_a={n_a} n_b={n_b} d={d} draws={draws}")
    a2b = expected_max_signed_cosine(n_b, d)
    b2a = expected_max_signed_cosine(n_a, d)
    if n_a == n_b:
        fbest = {_key(t): p_best_match_above(t, n_b, d, "signed") for t in thresholds}
    else:
        fbest = {_key(t): p_best_match_above(t, max(n_a, n_b), d, "signed") for t in thresholds}
    by_bound = _shared_bound(n_a, n_b, d, shared_threshold, with_encoders)

    rng = np.random.default_rng(o.seed)
    hung, fmatched, emp_a2b, emp_b2a, shared = [], [], [], [], []
    for _ in range(draws):
        A = rng.standard_normal((n_a, d), dtype=np.float32)
        B = rng.standard_normal((n_b, d), dtype=np.float32)
        EA = EB = None
        if not by_bound:
            EA = rng.standard_normal((d, n_a), dtype=np.float32)
            EB = rng.standard_normal((d, n_b), dtype=np.float32)
        r = compare_pair(A, B, EA, EB, options=o, with_baseline=False)
        hung.append(r["hungarian_mean_cos"])
        fmatched.append(r["frac_matched_above"])
        emp_a2b.append(r["mmcs_a_to_b"])
        emp_b2a.append(r["mmcs_b_to_a"])
        if not by_bound:
            shared.append(r["shared_latents_frac"])

    return {
        **baseline_summary(
            (n_a, n_b, d), (n_a, n_b), o,  # signed draws at full size: the transfer is for |cos|
            closed_form={"mmcs_a_to_b": a2b, "mmcs_b_to_a": b2a, "frac_best_match_above": fbest},
            per_draw={"hungarian_mean_cos": hung, "frac_matched_above": fmatched, "mmcs_a_to_b": emp_a2b,
                      "mmcs_b_to_a": emp_b2a, "shared_latents_frac": shared},
            shared_by_bound=by_bound, matching_method="empirical",
        ),
        "cosine": "signed",
    }


def _baseline(n_a: int, n_b: int, d: int, options: ComparisonOptions, with_encoders: bool) -> dict[str, Any]:
    """The random baseline :func:`compare_pair` attaches, for either cosine."""
    fn = random_decoder_baseline if options.cosine == "abs" else signed_random_baseline
    base = fn(n_a, n_b, d, options=options, with_encoders=with_encoders)
    if not with_encoders:
        base["shared_latents_frac"] = None
    return base


# --------------------------------------------------------------------------
# One pair
# --------------------------------------------------------------------------


def _signed_compare(A, B, enc_a, enc_b, options: ComparisonOptions):
    """:func:`compare_decoders` by signed cosine (no baseline): the |cos| machinery on augmented rows."""
    thresholds, shared_threshold = options.thresholds, options.shared_threshold
    augmented = replace(options, cosine="abs", thresholds=tuple(_to_aug(t) for t in thresholds),
                        shared_threshold=_to_aug(shared_threshold))
    res, arr = compare_decoders(
        signed_cosine_augment(A), signed_cosine_augment(B),
        None if enc_a is None else signed_cosine_augment(np.asarray(enc_a).T).T,
        None if enc_b is None else signed_cosine_augment(np.asarray(enc_b).T).T,
        options=augmented, with_baseline=False, return_arrays=True,
    )
    for k in ("best_cos_a", "best_cos_b", "matching_cos"):
        if k in arr:
            arr[k] = _from_aug(arr[k])
    n_a, n_b = res["n_a"], res["n_b"]
    small = min(n_a, n_b)
    best_a, best_b = arr["best_cos_a"], arr["best_cos_b"]
    a2b, b2a = float(best_a.mean(dtype=np.float64)), float(best_b.mean(dtype=np.float64))
    mx = MaxCosineResult(
        mmcs_a_to_b=a2b, mmcs_b_to_a=b2a, mmcs=0.5 * (a2b + b2a), best_b_for_a=arr["best_b_for_a"],
        best_cos_a=best_a, best_a_for_b=arr["best_a_for_b"], best_cos_b=best_b,
    )
    out = dict(res)
    out["d"] = int(np.asarray(A).shape[1])
    out["mmcs_a_to_b"] = mx.mmcs_a_to_b
    out["mmcs_b_to_a"] = mx.mmcs_b_to_a
    out["mmcs"] = mx.mmcs
    out["hungarian_mean_cos"] = float(arr["matching_cos"].sum(dtype=np.float64) / small)
    out["frac_matched_above"] = frac_above(arr["matching_cos"], thresholds, denominator=small)
    out["frac_best_match_above"] = best_match_frac_above(mx, thresholds)
    out["shared_threshold"] = float(shared_threshold)
    out["thresholds"] = [_key(t) for t in thresholds]
    out["cosine"] = "signed"
    return out, arr


def compare_pair(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any = None,
    enc_b: Any = None,
    *,
    options: ComparisonOptions | None = None,
    with_baseline: bool = True,
    baseline: dict[str, Any] | None = None,
    return_arrays: bool = False,
):
    """Every metric of :func:`saesim.similarity.compare_decoders`, by |cos| or by signed cosine.

    ``options`` (a :class:`~saesim.similarity.ComparisonOptions`, its defaults when
    None): with ``cosine="abs"`` (default) returns exactly what ``compare_decoders``
    returns. ``cosine="signed"`` scores a pair of rows by their signed cosine:
    best matches, the one-to-one matching (Song et al.'s PW-MCC is its
    ``hungarian_mean_cos``), fractions and shared latents; thresholds are
    then on cos, not |cos|; the result has ``"cosine": "signed"`` and its
    baseline comes from :func:`signed_random_baseline`. ``baseline``, when
    given, is used instead of computing one (a suite reuses one per shape);
    it must be the baseline of the same shapes, cosine and options.
    """
    o = ComparisonOptions() if options is None else options
    A = np.asarray(dec_a)
    B = np.asarray(dec_b)
    if (enc_a is None) != (enc_b is None):
        raise SaesimError("shared latents need both encoders (got only one)")
    if o.cosine == "abs" and baseline is None:
        return compare_decoders(A, B, enc_a, enc_b, options=o, with_baseline=with_baseline, return_arrays=return_arrays)
    if o.cosine == "abs":
        res, arr = compare_decoders(A, B, enc_a, enc_b, options=o, with_baseline=False, return_arrays=True)
    else:
        if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1]:
            # the same one-line errors as compare_decoders
            compare_decoders(A, B, with_baseline=False, memory_budget_mb=o.memory_budget_mb)
        res, arr = _signed_compare(A, B, enc_a, enc_b, o)
    if with_baseline:
        if baseline is None:
            baseline = _baseline(res["n_a"], res["n_b"], res["d"], o, with_encoders=enc_a is not None)
        res["baseline"] = baseline
        res["ratio"] = {k: ratio_or_none(res[k], baseline[k]) for k in SCALAR_METRICS}
    if return_arrays:
        return res, arr
    return res


# --------------------------------------------------------------------------
# A cross-variant cell and feature splitting
# --------------------------------------------------------------------------


def cross_variant_cell(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any = None,
    enc_b: Any = None,
    *,
    options: ComparisonOptions | None = None,
    with_baseline: bool = True,
    baseline: dict[str, Any] | None = None,
    return_arrays: bool = False,
):
    """One cell of a cross-variant matrix (width x width, L0 x L0, architecture, hook x hook).

    Everything :func:`compare_pair` returns (mean max cos A->B and B->A and
    their mean, the one-to-one matching, fractions over the smaller SAE,
    shared latents when encoders are given), plus both directions of the
    best-match fractions:

    * ``frac_best_match_above_a_to_b[t]``: fraction of A's latents whose best
      match in B is >= t; ``frac_best_match_above_b_to_a[t]``: of B's in A;

    and, under ``baseline`` (with ``with_baseline``), the same numbers for
    isotropic random SAEs of the same shapes: the baseline of
    :func:`compare_pair` plus both directions of the best-match fraction in
    closed form (:func:`p_best_match_above`). ``baseline``, when given,
    replaces the :func:`compare_pair` part (one per shape in a suite).
    ``options`` default to :class:`~saesim.similarity.ComparisonOptions` with the
    thresholds 0.7, 0.8, 0.9. Memory stays within its ``memory_budget_mb`` (see
    :mod:`saesim.similarity`).
    """
    o = ComparisonOptions(thresholds=CELL_THRESHOLDS) if options is None else options
    cosine, thresholds = o.cosine, o.thresholds
    res, arr = compare_pair(dec_a, dec_b, enc_a, enc_b, options=o, with_baseline=with_baseline, baseline=baseline,
                            return_arrays=True)
    res = dict(res)
    res["cosine"] = cosine
    res["frac_best_match_above_a_to_b"] = frac_above(arr["best_cos_a"], thresholds)
    res["frac_best_match_above_b_to_a"] = frac_above(arr["best_cos_b"], thresholds)
    if with_baseline:
        n_a, n_b, d = res["n_a"], res["n_b"], res["d"]
        base = dict(res["baseline"])
        base["frac_best_match_above_a_to_b"] = {_key(t): p_best_match_above(t, n_b, d, cosine) for t in thresholds}
        base["frac_best_match_above_b_to_a"] = {_key(t): p_best_match_above(t, n_a, d, cosine) for t in thresholds}
        base["method"] = dict(base.get("method", {}), frac_best_match_above_a_to_b="closed_form",
                              frac_best_match_above_b_to_a="closed_form")
        res["baseline"] = base
    if return_arrays:
        return res, arr
    return res


def feature_splitting(
    narrow: Any,
    wide: Any,
    *,
    thresholds: Sequence[float] = CELL_THRESHOLDS,
    top_m: int = DEFAULT_TOP_M,
    cosine: str = DEFAULT_COSINE,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    device: str = "cpu",
    return_counts: bool = False,
):
    """One-to-many matches between a narrow and a wide decoder (feature splitting).

    From one bounded-memory pass of :func:`saesim.similarity.top_abs_cosines`
    (each latent's ``top_m`` best partners on the other side), for each
    threshold t (keys like ``"0.7"``):

    * ``hist``: ``hist[c]`` is the number of narrow latents with exactly c wide
      partners at |cos| >= t (cos >= t when signed), c = 0..top_m. Counts are
      capped at ``top_m``: a narrow latent whose ``top_m`` partners all reach t
      may have more (``frac_capped`` says how many do, as a fraction);
    * ``mean_partners``: mean count per narrow latent; ``frac_narrow_matched``
      (count >= 1) and ``frac_narrow_split`` (count >= 2);
    * ``frac_wide_unmatched``: fraction of wide latents with no narrow
      partner at >= t (from each wide latent's best narrow partner, exact);
    * ``baseline``: for isotropic random decoders of the same shapes, the
      expected ``mean_partners`` (n_wide P(|cos| >= t), uncapped) and
      ``frac_wide_unmatched`` (P(|cos| < t)^n_narrow), in closed form.

    Returns a JSON-able dict; with ``return_counts``, ``(dict, arrays)`` where
    ``arrays["partners_<t>"]`` is each narrow latent's (capped) count and
    ``arrays["best_cos_wide"]`` each wide latent's best |cos| to the narrow SAE.
    The names say which SAE is narrow; nothing checks the widths.
    """
    check_cosine(cosine)
    if top_m < 1:
        raise SaesimError(f"top_m must be >= 1, got {top_m}")
    N = np.asarray(narrow)
    W = np.asarray(wide)
    if cosine == "signed":
        if N.ndim == 2 and W.ndim == 2 and N.shape[1] == W.shape[1]:
            N, W = signed_cosine_augment(N), signed_cosine_augment(W)
    top = top_abs_cosines(N, W, top_m, memory_budget_mb=memory_budget_mb, device=device)
    n_n, n_w = top.val_a.shape[0], top.val_b.shape[0]
    d = int(np.asarray(narrow).shape[1])
    vals = np.where(top.idx_a >= 0, top.val_a, -np.inf).astype(np.float64)
    best_w = top.val_b[:, 0].astype(np.float64)
    if cosine == "signed":
        vals = 2.0 * vals - 1.0
        best_w = 2.0 * best_w - 1.0
    m = top.m
    per_t: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {"best_cos_wide": best_w.astype(np.float32)}
    for t in thresholds:
        counts = np.count_nonzero(vals >= t, axis=1)
        hist = np.bincount(counts, minlength=m + 1)
        if cosine == "abs":
            p = 1.0 - float(prob_abs_cosine_below(t, d))
        else:
            p = 1.0 - float(_signed_cdf(t, d))
        per_t[_key(t)] = {
            "hist": [int(x) for x in hist],
            "mean_partners": float(counts.mean()),
            "frac_narrow_matched": float(np.count_nonzero(counts >= 1) / n_n),
            "frac_narrow_split": float(np.count_nonzero(counts >= 2) / n_n),
            "frac_capped": float(np.count_nonzero(counts >= m) / n_n) if m < n_w else 0.0,
            "frac_wide_unmatched": float(np.count_nonzero(best_w < t) / n_w),
            "baseline": {
                "mean_partners": n_w * p,
                "frac_wide_unmatched": float(np.exp(n_n * np.log1p(-p))) if p < 1 else 0.0,
            },
        }
        arrays[f"partners_{_key(t)}"] = counts.astype(np.int32)
    res = {
        "n_narrow": int(n_n),
        "n_wide": int(n_w),
        "d": d,
        "top_m": int(m),
        "cosine": cosine,
        "thresholds": [_key(t) for t in thresholds],
        "by_threshold": per_t,
    }
    if return_counts:
        return res, arrays
    return res


# --------------------------------------------------------------------------
# Suites: many SAEs on disk
# --------------------------------------------------------------------------


def _is_sae_folder(p: Path) -> bool:
    from saesim.saes.loading import CFG_FILE, SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS

    return (p / CFG_FILE).is_file() and ((p / SAE_LENS_WEIGHTS).is_file() or (p / SPARSIFY_WEIGHTS).is_file())


def broken_sae_subfolders(run: Path) -> list[tuple[Path, str]]:
    """Subfolders of a run folder that hold part of an SAE but not a whole one, with why.

    A subfolder counts when it has a ``cfg.json`` or a ``.safetensors`` file but not both a
    ``cfg.json`` and one of the SAE weight files; other folders (logs, notes) do not.
    """
    from saesim.saes.loading import CFG_FILE, SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS

    out: list[tuple[Path, str]] = []
    for q in sorted((q for q in run.iterdir() if q.is_dir()), key=lambda q: natural_key(q.name)):
        has_cfg = (q / CFG_FILE).is_file()
        has_weights = (q / SAE_LENS_WEIGHTS).is_file() or (q / SPARSIFY_WEIGHTS).is_file()
        if has_cfg and has_weights:
            continue
        if has_cfg:
            out.append((q, f"{CFG_FILE} but no {SPARSIFY_WEIGHTS} or {SAE_LENS_WEIGHTS}"))
        elif has_weights or any(q.glob("*.safetensors")):
            out.append((q, f"weights but no {CFG_FILE}"))
    return out


def expand_sae_specs(specs: Sequence[str | os.PathLike], *, skip_broken: bool = False,
                     on_skip: Callable[[str], None] | None = None) -> list[str]:
    """SAE specs with every run folder replaced by its SAE subfolders, in natural order.

    A *run folder* is a folder with no ``cfg.json`` of its own whose direct
    subfolders hold SAEs (``cfg.json`` plus ``sae.safetensors`` or
    ``sae_weights.safetensors``), as EleutherAI's sparsify writes one
    ``layers.N/`` per hookpoint. Anything else (an SAE folder, a weights file,
    a pretrained id ``release:sae_id``, a path that does not exist) is kept as
    given, so that loading it reports its own error.

    A subfolder holding part of an SAE (:func:`broken_sae_subfolders`) stops the
    expansion with one line naming it and why; with ``skip_broken`` it is left
    out and ``on_skip`` (if given) is called with a line saying so. A hookpoint
    is never lost without a word.
    """
    from saesim.saes.loading import CFG_FILE

    out: list[str] = []
    for spec in specs:
        s = os.fspath(spec)
        p = Path(s)
        if p.is_dir() and not (p / CFG_FILE).exists():
            subs = sorted((q for q in p.iterdir() if q.is_dir() and _is_sae_folder(q)),
                          key=lambda q: natural_key(q.name))
            broken = broken_sae_subfolders(p)
            if broken:
                listed = "; ".join(f"{q.name} ({why})" for q, why in broken)
                if not skip_broken or not subs:
                    left = "" if subs else " and no complete SAE is left"
                    raise SaesimError(
                        f"{p}: run folder with incomplete SAE subfolder(s): {listed}{left}; fix or remove them"
                        + (", or skip them (saesim compare --skip-broken; skip_broken: true in the config)" if subs else "")
                    )
                if on_skip is not None:
                    on_skip(f"{p}: skipping incomplete SAE subfolder(s): {listed}")
            if subs:
                out.extend(str(q) for q in subs)
                continue
        out.append(s)
    return out


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    for k in keys:
        for src in (cfg, meta):
            if src.get(k) is not None:
                return src[k]
    return None


def describe_sae(weights: Any, path: str | None = None) -> dict[str, Any]:
    """What a suite table says about one SAE, from its weights and ``cfg.json``.

    ``weights`` is a :class:`saesim.saes.loading.SAEWeights`. Keys: ``path``,
    ``format`` (sae_lens | sparsify), ``n`` (latents), ``d`` (input
    dimension), and where the config tells: ``hookpoint`` (sae-lens
    ``hook_name``; for sparsify, the folder name such as ``layers.6``),
    ``architecture`` (sae-lens ``architecture``; sparsify ``activation``,
    e.g. topk) and ``k`` (TopK's k).
    """
    cfg = weights.cfg or {}
    out: dict[str, Any] = {
        "path": path if path is not None else weights.source,
        "format": weights.format,
        "n": int(weights.d_sae),
        "d": int(weights.d_in),
    }
    hook = _first(cfg, "hook_name", "hookpoint")
    if hook is None and weights.format == "sparsify" and os.path.isdir(weights.source):
        hook = Path(weights.source).name
    arch = _first(cfg, "architecture", "activation")
    k = _first(cfg, "k")
    if hook is not None:
        out["hookpoint"] = str(hook)
    if arch is not None:
        out["architecture"] = str(arch)
    if k is not None:
        out["k"] = k
    return out


def compare_suite(
    saes: Sequence[Any],
    *,
    paths: Sequence[str] | None = None,
    options: ComparisonOptions | None = None,
    with_encoders: bool = True,
    with_baseline: bool = True,
    splitting: bool = True,
    timings: bool = False,
) -> dict[str, Any]:
    """Every pair i < j of a list of SAEs: ``{"saes": [...], "pairs": [...]}``.

    ``saes`` are :class:`saesim.saes.loading.SAEWeights` of one input
    dimension. ``saes[i]`` is described by :func:`describe_sae` (``paths[i]``
    as its path). Each pair is ``{"a": i, "b": j, ...}`` with every key of
    :func:`compare_pair` (what ``saesim compare A B --json`` prints), the
    two-direction best-match fractions of :func:`cross_variant_cell`
    (``frac_best_match_above_a_to_b`` / ``_b_to_a``, baselines included),
    for SAEs of different widths when ``splitting``, ``splitting``:
    :func:`feature_splitting` with the narrower SAE as narrow, and with
    ``timings`` the pair's wall time under ``seconds`` (off by default, so the
    result is deterministic). The random baseline is computed once per shape
    (it depends on nothing else). ``options``: a :class:`~saesim.similarity.ComparisonOptions`
    (its defaults when None), the same for every pair.
    """
    o = ComparisonOptions() if options is None else options
    cosine = o.cosine
    if len(saes) < 2:
        raise SaesimError(f"a suite comparison needs at least two SAEs, got {len(saes)}")
    d0 = saes[0].d_in
    for w in saes[1:]:
        if w.d_in != d0:
            raise SaesimError(
                f"{w.source}: d_in={w.d_in} does not match d_in={d0} of {saes[0].source}; "
                "decoders of different input spaces cannot be compared"
            )
    ids = [describe_sae(w, None if paths is None else paths[i]) for i, w in enumerate(saes)]
    bases: dict[tuple[int, int, bool], dict[str, Any]] = {}
    pairs = []
    for i in range(len(saes)):
        for j in range(i + 1, len(saes)):
            t0 = time.perf_counter()
            A, B = saes[i], saes[j]
            enc = with_encoders and A.W_enc is not None and B.W_enc is not None
            base = None
            if with_baseline:
                shape = (A.d_sae, B.d_sae, enc)
                if shape not in bases:
                    bases[shape] = _baseline(A.d_sae, B.d_sae, d0, o, with_encoders=enc)
                base = bases[shape]
            cell = cross_variant_cell(
                A.W_dec, B.W_dec, A.W_enc if enc else None, B.W_enc if enc else None, options=o,
                with_baseline=with_baseline, baseline=base,
            )
            if cosine == "abs":
                cell.pop("cosine")  # as in the two-SAE output, which names only a signed cosine
            pair = {"a": i, "b": j, **cell}
            if splitting and A.d_sae != B.d_sae:
                narrow, wide = (A, B) if A.d_sae < B.d_sae else (B, A)
                sp = feature_splitting(narrow.W_dec, wide.W_dec, thresholds=o.thresholds, top_m=o.top_m, cosine=cosine,
                                       memory_budget_mb=o.memory_budget_mb, device=o.device)
                sp["narrow"] = i if narrow is A else j
                pair["splitting"] = sp
            if timings:
                pair["seconds"] = {"total": round(time.perf_counter() - t0, 3)}
            pairs.append(pair)
    out: dict[str, Any] = {"saes": ids, "pairs": pairs}
    if cosine != "abs":
        out["cosine"] = cosine
    return out


def _cell(v: Any, b: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    s = f"{v:.3f}"
    if b is not None and isinstance(b, float) and math.isfinite(b):
        s += f" ({b:.3f})"
    return s


def format_suite_table(res: dict[str, Any]) -> str:
    """:func:`compare_suite` output as matrices: row SAE -> column SAE, random baseline in brackets.

    One matrix per metric: mean max cos from the row's latents to the column
    SAE, the one-to-one mean cos (symmetric), and for each threshold the
    fraction of the row's latents whose best match in the column reaches it;
    then feature splitting for pairs of different widths.
    """
    saes, pairs = res["saes"], res["pairs"]
    n = len(saes)
    cos = "cos" if res.get("cosine") == "signed" else "|cos|"
    lines = ["SAEs:"]
    for i, s in enumerate(saes):
        extra = ", ".join(f"{k} {s[k]}" for k in ("hookpoint", "architecture", "k") if k in s)
        lines.append(f"  [{i}] {s['path']} ({s['format']}, {s['n']} latents x d={s['d']}{', ' + extra if extra else ''})")

    # directed[(i, j)] = (pair, direction from i's side)
    by = {(p["a"], p["b"]): p for p in pairs}

    def lookup(i, j):
        if (i, j) in by:
            return by[(i, j)], "a_to_b"
        return by[(j, i)], "b_to_a"

    def matrix(title, get):
        cells = [[("-" if i == j else get(*lookup(i, j))) for j in range(n)] for i in range(n)]
        width = max(9, max(len(c) for row in cells for c in row) + 2)
        out = ["", title, " " * 6 + "".join(f"[{j}]".rjust(width) for j in range(n))]
        for i in range(n):
            out.append(f"[{i}]".ljust(6) + "".join(c.rjust(width) for c in cells[i]))
        return out

    def base(p):
        return p.get("baseline") or {}

    lines += matrix(f"mean max {cos}, row -> column (random baseline)",
                    lambda p, dr: _cell(p[f"mmcs_{dr}"], base(p).get(f"mmcs_{dr}")))
    lines += matrix(f"one-to-one mean {cos} (random baseline)",
                    lambda p, dr: _cell(p["hungarian_mean_cos"], base(p).get("hungarian_mean_cos")))
    thresholds = pairs[0]["thresholds"] if pairs else []
    for t in thresholds:
        lines += matrix(
            f"fraction of row's latents whose best match in column has {cos} >= {t} (random baseline)",
            lambda p, dr, t=t: _cell(p[f"frac_best_match_above_{dr}"][t],
                                     (base(p).get(f"frac_best_match_above_{dr}") or {}).get(t)),
        )
    split = [p for p in pairs if "splitting" in p]
    if split:
        lines += ["", f"feature splitting: narrow latents with 0, 1, 2, 3+ wide partners at {cos} >= t; "
                      "wide latents with no narrow partner"]
        for p in split:
            sp = p["splitting"]
            nar, wid = sp["narrow"], p["b"] if sp["narrow"] == p["a"] else p["a"]
            for t in sp["thresholds"]:
                r = sp["by_threshold"][t]
                h = r["hist"]
                parts = [h[0], h[1] if len(h) > 1 else 0, h[2] if len(h) > 2 else 0, sum(h[3:])]
                lines.append(
                    f"  [{nar}] -> [{wid}] t={t}: {parts[0]} / {parts[1]} / {parts[2]} / {parts[3]} of "
                    f"{sp['n_narrow']}, mean {r['mean_partners']:.2f}; wide unmatched "
                    f"{r['frac_wide_unmatched']:.3f} (random {r['baseline']['frac_wide_unmatched']:.3f})"
                )
        lines.append(f"  (partner counts capped at top-m = {split[0]['splitting']['top_m']})")
    lines.append("")
    lines.append(f"{len(pairs)} pairs; cosine: {res.get('cosine', 'abs')}")
    return "\n".join(lines)
