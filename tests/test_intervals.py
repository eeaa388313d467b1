"""Known answers for saesim.registry.intervals: the t-interval over seed pairs, its overlap with the
null's, and the one home both the decoder metrics and the per-latent metrics use."""

import numpy as np
import pytest

from saesim.registry import intervals as iv

#: t_{0.975, 2} and t_{0.975, 4} (scipy.stats.t.ppf(0.975, 2), (0.975, 4)): the textbook table's values
T_975_2, T_975_4 = 4.302652729911275, 2.7764451051977987


def test_t_interval_is_the_textbook_interval():
    lo, hi = iv.t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    assert lo == pytest.approx(2 - T_975_2 / np.sqrt(3)) and hi == pytest.approx(2 + T_975_2 / np.sqrt(3))
    vals = [0.30, 0.32, 0.34, 0.36, 0.38]  # mean 0.34, sd 0.0316..., n 5
    half = T_975_4 * np.std(vals, ddof=1) / np.sqrt(5)
    assert iv.t_interval(vals) == pytest.approx((0.34 - half, 0.34 + half))
    # a 90% interval is narrower; non-finite values are dropped
    lo90, hi90 = iv.t_interval([1.0, 2.0, 3.0, np.nan], level=0.90)
    assert lo < lo90 < 2 < hi90 < hi
    # identical values: a zero-width interval
    assert iv.t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_fewer_than_three_pairs_give_no_interval():
    assert iv.MIN_PAIRS_FOR_INTERVAL == 3
    assert all(np.isnan(iv.t_interval([1.0, 2.0])))
    assert all(np.isnan(iv.t_interval([1.0, 2.0, np.nan])))
    s = iv.interval_stats([0.8, 0.9], [0.5])
    assert all(np.isnan(s[k]) for k in ("lo", "hi", "null_lo", "null_hi", "excess_distinct"))
    # per-SAE values: three SAEs but one seed pair (n_pairs) give none either
    assert np.isnan(iv.interval_stats([0.8, 0.85, 0.9], [], n_pairs=1)["lo"])


def test_overlap_and_excess_distinct():
    assert iv.intervals_overlap(0, 1, 0.5, 2) == 1.0
    assert iv.intervals_overlap(0, 1, 1.5, 2) == 0.0
    assert iv.intervals_overlap(0, 1, 1, 2) == 1.0  # closed intervals touching
    assert np.isnan(iv.intervals_overlap(np.nan, np.nan, 0, 1))
    # without a null interval the null's mean is a point
    assert iv.excess_distinct(0.6, 0.7, np.nan, np.nan, 0.5) == 1.0
    assert iv.excess_distinct(0.4, 0.7, np.nan, np.nan, 0.5) == 0.0
    assert np.isnan(iv.excess_distinct(np.nan, np.nan, 0.1, 0.2, 0.15))
    assert np.isnan(iv.excess_distinct(0.4, 0.7, np.nan, np.nan, np.nan))  # no null at all


def test_interval_stats_planted_separation_and_overlap():
    # real pairs far above the null's single pair: distinct; the null has no interval
    s = iv.interval_stats([0.90, 0.91, 0.92], [0.50])
    assert s["lo"] == pytest.approx(0.91 - T_975_2 * 0.01 / np.sqrt(3))
    assert np.isnan(s["null_lo"]) and np.isnan(s["null_hi"]) and s["excess_distinct"] == 1.0
    # real pairs spread across the null's point: not distinguishable from zero
    assert iv.interval_stats([0.4, 0.5, 0.6], [0.50])["excess_distinct"] == 0.0
    # three null pairs: the null's own interval, compared interval to interval
    s = iv.interval_stats([0.90, 0.91, 0.92], [0.80, 0.85, 0.90])
    half = T_975_2 * 0.05 / np.sqrt(3)
    assert (s["null_lo"], s["null_hi"]) == pytest.approx((0.85 - half, 0.85 + half))
    assert s["excess_distinct"] == 0.0  # the null's interval reaches the real one
    s = iv.interval_stats([0.90, 0.91, 0.92], [0.30, 0.31, 0.32])
    assert s["excess_distinct"] == 1.0
    # clipped to [0, 1]
    assert iv.interval_stats([0.0, 0.01, 0.5])["lo"] == 0.0


def test_per_latent_uses_the_same_home():
    from saesim.analysis import per_latent as pl

    assert pl.interval_stats is iv.interval_stats
    assert not hasattr(pl, "t_interval") and not hasattr(pl, "MIN_PAIRS_FOR_INTERVAL")  # one home
