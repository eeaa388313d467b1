"""Stage 3, baselines: every metric of :func:`~saesim.similarity.compare_decoders` for random SAEs.

Max-type metrics have a closed form (the Beta law of cos^2 between random
directions); matching metrics are measured on random Gaussian decoders of the
same shapes, drawn smaller beyond a size and transferred to full size
(:func:`transfer_abs_cosine`). Scans and matchings stay within the memory budget
as in :mod:`saesim.similarity.scan` and :mod:`saesim.similarity.matching`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saesim.errors import SaesimError

from saesim.similarity.matching import _max_and_matching, shared_latents
from saesim.similarity.options import DEFAULT_BASELINE_DRAW_SIZE, ComparisonOptions
from saesim.similarity.scan import _key, frac_above


def prob_abs_cosine_below(x: Any, d: int) -> np.ndarray:
    """P(|cos| <= x) for two independent uniformly random directions in R^d.

    cos^2 follows Beta(1/2, (d-1)/2), so this is the regularised incomplete beta
    function at x^2.
    """
    from scipy.special import betainc

    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return betainc(0.5, 0.5 * (d - 1), x * x)


def expected_max_abs_cosine(n: int, d: int, grid: int = 20001) -> float:
    """E[max |cos|] between one direction and ``n`` independent random directions in R^d.

    Given the first direction the ``n`` cosines are i.i.d. (rotation
    invariance), so E[max] = integral over [0, 1] of (1 - F(x)^n), with F from
    :func:`prob_abs_cosine_below`. This is exactly the expected mean max |cos|
    from A to B for random Gaussian decoders with ``n`` rows in B.
    """
    x = np.linspace(0.0, 1.0, grid)
    with np.errstate(divide="ignore"):
        log_f = np.log(prob_abs_cosine_below(x, d))
    surv = -np.expm1(n * log_f)  # 1 - F^n without cancellation
    return float(np.trapezoid(surv, x))


def _p_best_above(t: float, n: int, d: int) -> float:
    """P(max of n random |cos| >= t) = 1 - F(t)^n."""
    f = float(prob_abs_cosine_below(t, d))
    if f <= 0.0:
        return 1.0
    return max(0.0, float(-np.expm1(n * np.log(f))))


def _gaussian(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d), dtype=np.float32)


def transfer_abs_cosine(x: Any, d: int, ratio: float) -> np.ndarray:
    """|cos| values seen against n' random rows, moved to the same level against n = n' / ``ratio`` rows.

    With F the CDF of the |cos| between two random directions in R^d
    (:func:`prob_abs_cosine_below`), ``x`` goes to the ``y`` with
    F(y)^n = F(x)^n', i.e. log F(y) = ``ratio`` * log F(x). The best of n'
    i.i.d. values and the best of n have the same law after this map, exactly;
    for a row's partner in an optimal one-to-one matching it holds in the limit
    of many rows (see :func:`random_decoder_baseline`). float64, same shape as ``x``.
    """
    from scipy.special import betaincc, betainccinv

    if not ratio > 0:
        raise SaesimError(f"transfer ratio must be positive, got {ratio}")
    a, b = 0.5, 0.5 * (d - 1)
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    tail = betaincc(a, b, x * x)  # P(|cos| > x), accurate far out in the tail
    with np.errstate(divide="ignore"):
        log_f = np.log1p(-tail)  # -inf at x = 0
    tail_y = -np.expm1(ratio * log_f)
    return np.sqrt(betainccinv(a, b, tail_y))


def baseline_draw_shape(n_a: int, n_b: int, draw_size: int | None = DEFAULT_BASELINE_DRAW_SIZE) -> tuple[int, int]:
    """Shape of the random draws for the matching baseline of an n_a x n_b comparison.

    Unchanged when n_a n_b <= ``draw_size``^2 (or ``draw_size`` is None);
    otherwise both sides are divided by the same factor s = sqrt(n_a n_b) /
    ``draw_size`` (rounded, at least 1 row), keeping their ratio.
    """
    if draw_size is None or n_a * n_b <= draw_size * draw_size:
        return int(n_a), int(n_b)
    if draw_size < 1:
        raise SaesimError(f"baseline draw size must be >= 1 or None, got {draw_size}")
    s = float(np.sqrt(float(n_a) * float(n_b))) / draw_size
    return max(1, int(round(n_a / s))), max(1, int(round(n_b / s)))


def random_decoder_baseline(
    n_a: int,
    n_b: int,
    d: int,
    *,
    options: ComparisonOptions | None = None,
    with_encoders: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Every metric of :func:`compare_decoders` for random Gaussian SAEs of the same shapes.

    ``options`` (a :class:`ComparisonOptions`, its defaults when None; single fields
    of it as keywords override it) give the thresholds, the ``baseline_draws`` draws
    and their ``seed``, the budget, top-m, device and ``baseline_draw_size``.

    * Max-type metrics (``mmcs*``, ``frac_best_match_above``) use their closed
      form: given a row of A its |cos| to B's rows are i.i.d., so the expected
      per-row max follows from the Beta law of cos^2 (:func:`expected_max_abs_cosine`).
    * Matching metrics (``hungarian_mean_cos``, ``frac_matched_above``) are
      averaged over ``baseline_draws`` pairs of random decoders (one scan each, matched
      exactly as :func:`one_to_one_matching` would); ``std`` holds their spread.
      The same scans give ``empirical`` values of the max-type metrics, as a check.
    * Beyond ``baseline_draw_size``^2 latent pairs (n_a n_b) the draws are smaller:
      :func:`baseline_draw_shape` divides both sides by one factor s, and every
      matched |cos| x of a draw is moved to the level it would have against s
      times as many rows (:func:`transfer_abs_cosine`: F(y)^n_b = F(x)^n_b').
      Why this is right: a row's |cos| to the other side's random rows are
      i.i.d.; in "tail units" n_b (1 - F(x)) its best values form the same
      Poisson process whatever n_b and d (exactly for the best value), and the
      optimal matching only ever uses each row's few best values, so the law
      of the matched values in those units does not depend on n_b either (the
      local limit of the random assignment problem, Aldous 2001). Measured:
      within 1e-3 of full-size draws at n = 4,096 (d = 576, from 1,024 and from
      256 latents) and in ``benchmarks/bench_compare.py`` at 4k/8k/16k.
      ``draw_n_a``/``draw_n_b`` give the drawn shape; ``baseline_draw_size=None`` draws
      at full size. The empirical max-type values are transferred the same way.
    * ``shared_latents_frac`` needs a decoder and an encoder pair with |cos| >=
      the threshold: when the expected number of such pairs, n_a n_b p^2, is
      below 1e-3 the baseline is 0 (``method`` says "bound"); otherwise it is
      measured on random encoders too, at full size (it does not transfer).

    Deterministic given ``seed``.
    """
    o = ComparisonOptions.with_overrides(options, overrides, "random_decoder_baseline")
    draws, thresholds, shared_threshold = o.baseline_draws, o.thresholds, o.shared_threshold
    if min(n_a, n_b, d) < 1 or draws < 1:
        raise SaesimError(f"random baseline needs positive sizes and draws, got n_a={n_a} n_b={n_b} d={d} draws={draws}")
    a2b = expected_max_abs_cosine(n_b, d)
    b2a = expected_max_abs_cosine(n_a, d)
    small, large = (n_a, n_b) if n_a <= n_b else (n_b, n_a)
    if n_a == n_b:
        fbest = {_key(t): _p_best_above(t, n_b, d) for t in thresholds}
    else:
        fbest = {_key(t): _p_best_above(t, large, d) for t in thresholds}

    p_pair = 1.0 - float(prob_abs_cosine_below(shared_threshold, d))
    shared_by_bound = (not with_encoders) or (n_a * n_b * p_pair**2 < 1e-3)

    # drawn shape: smaller (and transferred) only where the shared fraction is not measured
    da, db = baseline_draw_shape(n_a, n_b, o.baseline_draw_size) if shared_by_bound else (n_a, n_b)
    scaled = (da, db) != (n_a, n_b)
    # the smaller side's rows are matched into the larger side: its size sets the scale
    r_match = db / n_b if n_a <= n_b else da / n_a

    rng = np.random.default_rng(o.seed)
    hung, fmatched, emp_a2b, emp_b2a, shared = [], [], [], [], []
    for _ in range(draws):
        A = _gaussian(rng, da, d)
        B = _gaussian(rng, db, d)
        mx, mr = _max_and_matching(A, B, o.memory_budget_mb, o.top_m, o.device)
        if scaled:
            cos = transfer_abs_cosine(mr.cos, d, r_match)
            hung.append(float(cos.mean()))
            fmatched.append(frac_above(cos, thresholds))
            emp_a2b.append(float(transfer_abs_cosine(mx.best_cos_a, d, db / n_b).mean()))
            emp_b2a.append(float(transfer_abs_cosine(mx.best_cos_b, d, da / n_a).mean()))
        else:
            hung.append(mr.mean_matched_cos)
            fmatched.append(frac_above(mr.cos, thresholds, denominator=small))
            emp_a2b.append(mx.mmcs_a_to_b)
            emp_b2a.append(mx.mmcs_b_to_a)
        if not shared_by_bound:
            EA = _gaussian(rng, d, n_a)
            EB = _gaussian(rng, d, n_b)
            sh = shared_latents(A, B, EA, EB, options=o, dec_matching=mr)
            shared.append(sh.frac)
            del EA, EB
        del A, B

    matching_method = "transferred" if scaled else "empirical"
    return baseline_summary(
        (n_a, n_b, d), (da, db), o,
        closed_form={"mmcs_a_to_b": a2b, "mmcs_b_to_a": b2a, "frac_best_match_above": fbest},
        per_draw={"hungarian_mean_cos": hung, "frac_matched_above": fmatched, "mmcs_a_to_b": emp_a2b,
                  "mmcs_b_to_a": emp_b2a, "shared_latents_frac": shared},
        shared_by_bound=shared_by_bound, matching_method=matching_method,
    )


def baseline_summary(
    shape: tuple[int, int, int], draw_shape: tuple[int, int], options: ComparisonOptions, *,
    closed_form: dict[str, Any], per_draw: dict[str, list], shared_by_bound: bool, matching_method: str,
) -> dict[str, Any]:
    """The baseline JSON of random decoder pairs (|cos| here, signed in saesim.similarity.suites): the
    closed-form mean max cosines and best-match fractions beside the means and s.d. of the
    per-draw matching, fractions matched and shared latents (one list entry per draw).
    ``shape`` is ``(n_a, n_b, d)``; ``options`` the comparison's (draws, seed, thresholds)."""
    n_a, n_b, d = shape
    draws, seed, thresholds = options.baseline_draws, options.seed, options.thresholds
    a2b, b2a = closed_form["mmcs_a_to_b"], closed_form["mmcs_b_to_a"]
    hung, fmatched = per_draw["hungarian_mean_cos"], per_draw["frac_matched_above"]
    emp_a2b, emp_b2a, shared = per_draw["mmcs_a_to_b"], per_draw["mmcs_b_to_a"], per_draw["shared_latents_frac"]

    def mean(xs):
        return float(np.mean(xs))

    def std(xs):
        return float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0

    keys = [_key(t) for t in thresholds]
    emp_mmcs = [0.5 * (x + y) for x, y in zip(emp_a2b, emp_b2a)]
    return {
        "n_a": int(n_a),
        "n_b": int(n_b),
        "d": int(d),
        "draws": int(draws),
        "draw_n_a": int(draw_shape[0]),
        "draw_n_b": int(draw_shape[1]),
        "seed": int(seed),
        "mmcs": 0.5 * (a2b + b2a),
        "mmcs_a_to_b": a2b,
        "mmcs_b_to_a": b2a,
        "hungarian_mean_cos": mean(hung),
        "frac_matched_above": {k: mean([f[k] for f in fmatched]) for k in keys},
        "frac_best_match_above": closed_form["frac_best_match_above"],
        "shared_latents_frac": 0.0 if shared_by_bound else mean(shared),
        "std": {
            "hungarian_mean_cos": std(hung),
            "frac_matched_above": {k: std([f[k] for f in fmatched]) for k in keys},
            "shared_latents_frac": 0.0 if shared_by_bound else std(shared),
            "mmcs": std(emp_mmcs),
            "mmcs_a_to_b": std(emp_a2b),
            "mmcs_b_to_a": std(emp_b2a),
        },
        "empirical": {"mmcs": mean(emp_mmcs), "mmcs_a_to_b": mean(emp_a2b), "mmcs_b_to_a": mean(emp_b2a)},
        "method": {
            "mmcs": "closed_form",
            "mmcs_a_to_b": "closed_form",
            "mmcs_b_to_a": "closed_form",
            "frac_best_match_above": "closed_form",
            "hungarian_mean_cos": matching_method,
            "frac_matched_above": matching_method,
            "shared_latents_frac": "bound" if shared_by_bound else "empirical",
        },
    }


