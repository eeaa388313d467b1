"""The matching baseline at scale: drawn smaller and transferred; and excess over a null pair.

Known answers: the transfer map is exact for the best of n i.i.d. |cos| (its
median moves to the median at the other n); matching baselines transferred
from small draws agree with full-size draws; excess is 0 at the null and 1
for a perfect pair.
"""

import numpy as np
import pytest
import torch

from saesim import similarity as S
from saesim.errors import SaesimError

torch.set_num_threads(1)


def max_quantile(q, n, d):
    """The q-quantile of the best of n random |cos| in R^d: F(x)^n = q, by bisection on the exact CDF."""
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if S.prob_abs_cosine_below(mid, d) ** n < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("n_from,n_to,d", [(1024, 65536, 2304), (512, 4096, 576), (256, 2048, 128)])
def test_transfer_moves_quantiles_of_the_best_match(n_from, n_to, d):
    for q in (0.1, 0.5, 0.9):
        x = max_quantile(q, n_from, d)
        y = S.transfer_abs_cosine([x], d, n_from / n_to)[0]
        assert y == pytest.approx(max_quantile(q, n_to, d), abs=1e-6)
        assert y > x  # more rows to choose from: a better best match


def test_transfer_identity_and_ends():
    x = np.array([0.0, 0.05, 0.3, 0.9, 1.0])
    np.testing.assert_allclose(S.transfer_abs_cosine(x, 64, 1.0), x, atol=1e-9)
    y = S.transfer_abs_cosine(x, 64, 0.25)
    assert y[0] == 0.0 and y[-1] == 1.0 and np.all(np.diff(y) > 0)
    with pytest.raises(SaesimError):
        S.transfer_abs_cosine(x, 64, 0.0)


def test_draw_shape():
    assert S.baseline_draw_shape(1000, 2000, 2048) == (1000, 2000)  # under 2048^2 pairs: unchanged
    assert S.baseline_draw_shape(65536, 65536, 2048) == (2048, 2048)
    assert S.baseline_draw_shape(16384, 65536, 2048) == (1024, 4096)  # ratio kept
    assert S.baseline_draw_shape(65536, 65536, None) == (65536, 65536)
    assert S.baseline_draw_shape(10, 10**7, 100) == (1, 100000)  # at least one row


@pytest.mark.parametrize("n,d,draw_size", [(4096, 576, 1024), (2048, 128, 512)])
def test_transferred_matching_baseline_agrees_with_full_size_draws(n, d, draw_size):
    """Full-size draws (exact Hungarian) against draws s = 4 times smaller, transferred.

    Measured: 4,096 x 576 full 0.15311, from 1,024 0.15306; 2,048 x 128 full
    0.30385, from 512 0.30428. The one-to-one value sits clearly below the
    closed-form mean max |cos| (0.1576, 0.3140), so agreeing with it would fail.
    """
    full = S.random_decoder_baseline(n, n, d, baseline_draws=1, seed=0, with_encoders=False, baseline_draw_size=None)
    small = S.random_decoder_baseline(n, n, d, baseline_draws=3, seed=1, with_encoders=False, baseline_draw_size=draw_size)
    assert full["method"]["hungarian_mean_cos"] == "empirical" and (full["draw_n_a"], full["draw_n_b"]) == (n, n)
    assert small["method"]["hungarian_mean_cos"] == "transferred"
    assert (small["draw_n_a"], small["draw_n_b"]) == (draw_size, draw_size)
    assert small["hungarian_mean_cos"] == pytest.approx(full["hungarian_mean_cos"], abs=0.002)
    assert full["mmcs"] - full["hungarian_mean_cos"] > 0.004
    # the drawn best matches, transferred, land on the closed form too
    assert small["empirical"]["mmcs"] == pytest.approx(small["mmcs"], abs=0.002)
    assert set(small["frac_matched_above"]) == set(full["frac_matched_above"])


def test_small_shapes_draw_at_full_size_and_shared_draws_are_not_scaled():
    b = S.random_decoder_baseline(300, 200, 32, baseline_draws=1, baseline_draw_size=2048)
    assert (b["draw_n_a"], b["draw_n_b"]) == (300, 200) and b["method"]["hungarian_mean_cos"] == "empirical"
    # at d = 8 random encoder/decoder pairs reach |cos| 0.7: shared latents are measured, at full size
    b = S.random_decoder_baseline(300, 200, 8, baseline_draws=1, baseline_draw_size=64)
    assert b["method"]["shared_latents_frac"] == "empirical"
    assert (b["draw_n_a"], b["draw_n_b"]) == (300, 200)
    b = S.random_decoder_baseline(300, 200, 8, baseline_draws=1, baseline_draw_size=64, with_encoders=False)
    assert (b["draw_n_a"], b["draw_n_b"]) == (78, 52)


# --------------------------------------------------------------------------
# Excess over a null pair
# --------------------------------------------------------------------------


def fake_result(mmcs, hung, shared, fm, fb):
    return {"mmcs": mmcs, "mmcs_a_to_b": mmcs, "mmcs_b_to_a": mmcs, "hungarian_mean_cos": hung,
            "shared_latents_frac": shared, "frac_matched_above": fm, "frac_best_match_above": fb}


def test_excess_known_values():
    real = fake_result(0.6, 0.5, None, {"0.7": 0.4, "0.9": 0.0}, {"0.7": 1.0, "0.9": 0.2})
    null = fake_result(0.2, 0.5, 0.1, {"0.7": 0.1, "0.9": 0.0}, {"0.7": 1.0, "0.9": 0.0})
    ex = S.excess_over_null(real, null)
    assert ex["mmcs_null"] == 0.2 and ex["mmcs_excess"] == pytest.approx(0.5)  # (0.6 - 0.2) / 0.8
    assert ex["hungarian_mean_cos_excess"] == 0.0
    assert ex["shared_latents_frac_excess"] is None and ex["shared_latents_frac_null"] == 0.1
    assert ex["frac_matched_above_null"] == {"0.7": 0.1, "0.9": 0.0}
    assert ex["frac_matched_above_excess"]["0.7"] == pytest.approx(1 / 3)
    assert ex["frac_matched_above_excess"]["0.9"] == 0.0
    assert ex["frac_best_match_above_excess"] == {"0.7": None, "0.9": 0.2}  # a null of 1 leaves no room
    for m in S.NULL_METRICS:
        assert f"{m}_null" in ex and f"{m}_excess" in ex


def test_excess_of_real_comparisons():
    rng = np.random.default_rng(0)
    n, d = 200, 24
    a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    rand = S.compare_decoders(a, b, with_baseline=False)
    perfect = S.compare_decoders(a, -3.0 * a[rng.permutation(n)], with_baseline=False)
    ex = S.excess_over_null(rand, rand)  # the null pair is the real pair: no excess
    for m in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos"):
        assert ex[f"{m}_excess"] == 0.0 and 0.2 < ex[f"{m}_null"] < 0.9
    ex = S.excess_over_null(perfect, rand)  # a perfect pair: all the way
    for m in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos"):
        assert ex[f"{m}_excess"] == pytest.approx(1.0, abs=1e-6)
    assert ex["frac_matched_above_excess"]["0.7"] == pytest.approx(1.0)


# --------------------------------------------------------------------------
# The scan's sparse update of late tiles
# --------------------------------------------------------------------------


def test_top_m_scan_with_sparse_late_tiles_equals_dense_reference(monkeypatch):
    """Many tiles, so late ones take the sparse fold; one row of A is close to 60 rows of B
    that sit in the last tile (more than 2 m entries above its floor there: the dense fallback)."""
    rng = np.random.default_rng(7)
    n_a, n_b, d, m = 600, 2000, 24, 16
    a = rng.standard_normal((n_a, d))
    b = rng.standard_normal((n_b, d))
    b[-60:] = a[3] + 0.05 * rng.standard_normal((60, d))
    a, b = a.astype(np.float32), b.astype(np.float32)
    calls = {"sparse": 0, "declined": 0}
    fold = S._fold_above_floor

    def counting(*args):
        ok = fold(*args)
        calls["sparse" if ok else "declined"] += 1
        return ok

    monkeypatch.setattr(S.scan, "_fold_above_floor", counting)  # where top_abs_cosines looks it up
    budget = 0.6
    R, C = S.tile_shape(n_a, n_b, d, budget)
    assert n_b // C >= 8  # many tiles per row
    top = S.top_abs_cosines(a, b, m, memory_budget_mb=budget)
    assert calls["sparse"] > 0 and calls["declined"] > 0
    ref = np.abs((a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float64)
                 @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T.astype(np.float64))
    np.testing.assert_allclose(top.val_a, -np.sort(-ref, axis=1)[:, :m], atol=1e-6)
    np.testing.assert_allclose(top.val_b, -np.sort(-ref.T, axis=1)[:, :m], atol=1e-6)
    for got, r in ((top.idx_a, ref), (top.idx_b, ref.T)):
        srt = -np.sort(-r, axis=1)
        clear = srt[:, m - 1] - srt[:, m] > 1e-5  # no near-tie at the m-th place: the set is determined
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(np.sort(got[clear], axis=1), np.sort(np.argsort(-r, axis=1)[clear, :m], axis=1))
    assert set(top.idx_a[3]) <= set(range(n_b - 60, n_b))
