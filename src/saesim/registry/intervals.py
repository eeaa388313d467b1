"""95% intervals over seed pairs, the one home of every stability number's interval: the decoder
metrics of stability.csv and results/summary.* (saesim.report.tables) and the per-latent metrics
(saesim.analysis.per_latent).

Method: a Student-t interval ``mean +- t_{0.975, n-1} * sd / sqrt(n)`` over the ``n`` values (one
per seed pair, or per SAE for per-SAE numbers), where there are at least
:data:`MIN_PAIRS_FOR_INTERVAL` seed pairs; clipped to [0, 1] (every stability number is a |cos|,
a fraction or a share). Seed pairs that share a seed are not independent (three seeds give three
pairs from only three trainings), so the interval is rough: if anything too narrow, a lower bound
on the uncertainty. ``excess_distinct`` is 1 when the real interval excludes the null's interval
(or the null's mean, where the null has fewer pairs: the default trains two null seeds, one
pair), 0 when they overlap (the excess over the null is not distinguishable from zero), NaN
without a real interval.

Kept free of heavy imports (scipy.special is imported on first use; the Snakefile imports the
registry).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: fewest seed pairs for an interval (3 seeds give 3 pairs)
MIN_PAIRS_FOR_INTERVAL = 3
#: the intervals' confidence level
INTERVAL_LEVEL = 0.95
#: the range every stability number lives in; intervals are clipped to it
VALUE_RANGE = (0.0, 1.0)


def t_interval(values: Sequence[float], level: float = INTERVAL_LEVEL, min_n: int = MIN_PAIRS_FOR_INTERVAL) -> tuple[float, float]:
    """Student-t interval ``mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)`` over the finite ``values``
    (sd with ddof 1); (NaN, NaN) below ``min_n`` of them. Not clipped. Treats the values as
    independent: seed pairs that share a seed are not (see the module's note)."""
    from scipy.special import stdtrit  # the t quantile (scipy.stats takes seconds to import)

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) < max(min_n, 2):
        return float("nan"), float("nan")
    mean = v.mean()
    half = stdtrit(len(v) - 1, 0.5 + level / 2) * v.std(ddof=1) / np.sqrt(len(v))
    return float(mean - half), float(mean + half)


def intervals_overlap(lo_a: float, hi_a: float, lo_b: float, hi_b: float) -> float:
    """1.0 when two closed intervals overlap, 0.0 when they do not, NaN when either is missing."""
    vals = np.array([lo_a, hi_a, lo_b, hi_b], dtype=np.float64)
    if not np.isfinite(vals).all():
        return float("nan")
    return float(not (hi_a < lo_b or hi_b < lo_a))


def excess_distinct(lo: float, hi: float, null_lo: float, null_hi: float, null: float) -> float:
    """1.0 when the real interval [lo, hi] excludes the null's interval or, without one, the null's
    mean ``null`` (a point); 0.0 when they overlap; NaN without a real interval or any null."""
    if not (math.isfinite(null_lo) and math.isfinite(null_hi)):
        null_lo = null_hi = null
    overlap = intervals_overlap(lo, hi, null_lo, null_hi)
    return float("nan") if math.isnan(overlap) else 1.0 - overlap


def _mean(values) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _clipped_interval(values, n_pairs: int | None) -> tuple[float, float]:
    n = len(np.asarray(values, dtype=np.float64).ravel()) if n_pairs is None else n_pairs
    if n < MIN_PAIRS_FOR_INTERVAL:
        return float("nan"), float("nan")
    lo, hi = t_interval(values)
    return float(np.clip(lo, *VALUE_RANGE)), float(np.clip(hi, *VALUE_RANGE))


def interval_stats(values, null_values=(), *, n_pairs: int | None = None, n_null_pairs: int | None = None) -> dict[str, float]:
    """The interval columns of one number (``lo``, ``hi``, ``null_lo``, ``null_hi``,
    ``excess_distinct``: saesim.registry.metrics.INTERVAL_STATS) from its values over the real
    seed pairs and over the null's. ``n_pairs`` / ``n_null_pairs``: the seed pairs behind them
    where the values are per SAE (default: one value per pair). NaN where there are too few pairs."""
    lo, hi = _clipped_interval(values, n_pairs)
    null_lo, null_hi = _clipped_interval(null_values, n_null_pairs)
    return {"lo": lo, "hi": hi, "null_lo": null_lo, "null_hi": null_hi,
            "excess_distinct": excess_distinct(lo, hi, null_lo, null_hi, _mean(null_values))}
