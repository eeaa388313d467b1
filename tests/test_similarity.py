"""Known-answer tests for saesim.similarity (small sizes, CPU, one thread)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from saesim import similarity as S
from saesim.errors import SaesimError

torch.set_num_threads(1)


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def dense_abs_cos(a, b):
    """float64 reference |cos| matrix."""
    return np.abs(unit(a) @ unit(b).T)


def max_moments(n, d):
    """Mean and std of the max of n random |cos| in R^d (from the exact CDF)."""
    x = np.linspace(0.0, 1.0, 20001)
    surv = 1.0 - S.prob_abs_cosine_below(x, d) ** n
    m1 = np.trapezoid(surv, x)
    m2 = np.trapezoid(2 * x * surv, x)
    return m1, np.sqrt(m2 - m1 * m1)


def permuted_copy(a, rng):
    """Rows of ``a`` permuted, sign-flipped and rescaled; returns (copy, perm) with copy[j] ~ a[perm[j]]."""
    perm = rng.permutation(len(a))
    signs = rng.choice([-1.0, 1.0], size=(len(a), 1))
    scales = rng.uniform(0.1, 10.0, size=(len(a), 1))
    return (a[perm] * signs * scales).astype(np.float32), perm


# --------------------------------------------------------------------------


def test_normalize_rows_unit_and_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    y = S.normalize_rows(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]], atol=1e-7)
    assert x[0, 0] == 3.0  # input untouched


def test_zero_rows_give_zero_cosine_not_nan():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 8)).astype(np.float32)
    b = rng.standard_normal((30, 8)).astype(np.float32)
    a[3] = 0.0
    r = S.max_abs_cosine(a, b)
    assert np.isfinite(r.best_cos_a).all() and np.isfinite(r.best_cos_b).all()
    assert r.best_cos_a[3] == 0.0


@pytest.mark.parametrize("budget_mb", [0.005, 0.05, 0.5, 1024])
def test_chunked_scan_equals_dense_reference(budget_mb):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((333, 40)) * rng.uniform(0.1, 5, (333, 1))).astype(np.float32)
    b = (rng.standard_normal((517, 40)) * rng.uniform(0.1, 5, (517, 1))).astype(np.float32)
    ref = dense_abs_cos(a, b)
    # no near-ties in this draw, so float32 rounding cannot reorder the answer
    srt = np.sort(ref, axis=1)
    assert (srt[:, -1] - srt[:, -2]).min() > 1e-6
    R, C = S.tile_shape(333, 517, 40, budget_mb)
    if budget_mb < 1:
        assert R < 333 and C < 517  # really tiled

    r = S.max_abs_cosine(a, b, memory_budget_mb=budget_mb)
    np.testing.assert_array_equal(r.best_b_for_a, ref.argmax(1))
    np.testing.assert_array_equal(r.best_a_for_b, ref.argmax(0))
    np.testing.assert_allclose(r.best_cos_a, ref.max(1), atol=1e-6)
    np.testing.assert_allclose(r.best_cos_b, ref.max(0), atol=1e-6)
    assert r.mmcs_a_to_b == pytest.approx(ref.max(1).mean(), abs=1e-6)
    assert r.mmcs_b_to_a == pytest.approx(ref.max(0).mean(), abs=1e-6)
    assert r.mmcs == pytest.approx(0.5 * (ref.max(1).mean() + ref.max(0).mean()), abs=1e-6)

    top = S.top_abs_cosines(a, b, 16, memory_budget_mb=budget_mb)
    np.testing.assert_array_equal(top.idx_a, np.argsort(-ref, axis=1, kind="stable")[:, :16])
    np.testing.assert_array_equal(top.idx_b, np.argsort(-ref.T, axis=1, kind="stable")[:, :16])
    np.testing.assert_allclose(top.val_a, -np.sort(-ref, axis=1)[:, :16], atol=1e-6)


def test_top_m_larger_than_other_side_pads_with_minus_one():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 8)).astype(np.float32)
    b = rng.standard_normal((40, 8)).astype(np.float32)
    top = S.top_abs_cosines(a, b, 16, memory_budget_mb=0.01)
    assert (top.idx_a >= 0).all()
    assert (top.idx_b[:, :5] >= 0).all()
    assert (top.idx_b[:, 5:] == -1).all() and (top.val_b[:, 5:] == -1).all()


@pytest.mark.parametrize("exact", [True, False])
def test_permuted_signflipped_rescaled_copy_gives_one_everywhere(exact):
    rng = np.random.default_rng(3)
    n, d = 300, 48
    dec_a = rng.standard_normal((n, d)).astype(np.float32)
    enc_a = rng.standard_normal((d, n)).astype(np.float32)
    dec_b, perm = permuted_copy(dec_a, rng)
    enc_b = (enc_a[:, perm] * rng.uniform(0.5, 2.0, n)).astype(np.float32)
    budget = 1024 if exact else 0.3  # 0.3 MB is too small for the dense cost matrix
    res, arrays = S.compare_decoders(dec_a, dec_b, enc_a, enc_b, memory_budget_mb=budget,
                                     with_baseline=False, return_arrays=True)
    assert res["matching_exact"] is exact
    for k in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac"):
        assert res[k] == pytest.approx(1.0, abs=1e-5), k
    assert all(v == 1.0 for v in res["frac_matched_above"].values())
    assert all(v == 1.0 for v in res["frac_best_match_above"].values())
    inv = np.argsort(perm)  # row i of A is row inv[i] of B
    np.testing.assert_array_equal(arrays["best_b_for_a"], inv)
    np.testing.assert_array_equal(arrays["matching_cols"][np.argsort(arrays["matching_rows"])], inv)
    assert arrays["shared_mask_a"].all()


def test_planted_shared_fraction_and_rest_at_baseline():
    rng = np.random.default_rng(4)
    n, d, k = 1000, 64, 600
    dec_a = rng.standard_normal((n, d)).astype(np.float32)
    enc_a = rng.standard_normal((d, n)).astype(np.float32)
    src = rng.choice(n, size=k, replace=False)  # A's latents planted in B
    dec_b = np.concatenate([dec_a[src] * rng.choice([-1, 1], (k, 1)) * 2.5,
                            rng.standard_normal((n - k, d))]).astype(np.float32)
    enc_b = np.concatenate([enc_a[:, src] * 0.5, rng.standard_normal((d, n - k))], axis=1).astype(np.float32)
    order = rng.permutation(n)
    dec_b, enc_b = dec_b[order], np.ascontiguousarray(enc_b[:, order])

    res, arrays = S.compare_decoders(dec_a, dec_b, enc_a, enc_b, baseline_draws=2, return_arrays=True)
    assert res["shared_latents_frac"] == pytest.approx(0.60, abs=0.02)
    assert res["frac_matched_above"]["0.7"] == pytest.approx(0.60, abs=0.02)
    assert res["frac_best_match_above"]["0.7"] == pytest.approx(0.60, abs=0.02)
    planted = np.zeros(n, bool)
    planted[src] = True
    np.testing.assert_array_equal(arrays["shared_mask_a"], planted)

    # the other 400 latents of A: each B row is an independent random direction to them,
    # so their best |cos| follows the closed-form law exactly; 5 standard errors
    mean, sd = max_moments(n, d)
    rest = arrays["best_cos_a"][~planted]
    assert rest.mean() == pytest.approx(mean, abs=5 * sd / np.sqrt(len(rest)))
    assert res["baseline"]["mmcs_a_to_b"] == pytest.approx(mean, abs=1e-9)
    # the baseline itself has nothing above 0.7 at d=64
    assert res["baseline"]["frac_matched_above"]["0.7"] == 0.0
    assert res["baseline"]["shared_latents_frac"] == 0.0
    assert res["ratio"]["mmcs"] == pytest.approx(res["mmcs"] / res["baseline"]["mmcs"])


def test_two_random_decoders_sit_at_the_baseline():
    rng = np.random.default_rng(5)
    n, d = 800, 64
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32)
    enc_a = rng.standard_normal((d, n)).astype(np.float32)
    enc_b = rng.standard_normal((d, n)).astype(np.float32)
    res = S.compare_decoders(a, b, enc_a, enc_b, baseline_draws=3, seed=11)
    base = res["baseline"]
    # mean over 800 rows of a per-row max with sd ~0.03: 5 standard errors ~ 0.005
    _, sd = max_moments(n, d)
    tol = 5 * sd / np.sqrt(n)
    for k in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a"):
        assert res[k] == pytest.approx(base[k], abs=tol), k
        assert base["empirical"][k] == pytest.approx(base[k], abs=tol), k
    # one-to-one matching: draw-to-draw sd at this size is ~0.001 (see base["std"]); 0.01 is > 5 sd
    assert base["std"]["hungarian_mean_cos"] < 0.002
    assert res["hungarian_mean_cos"] == pytest.approx(base["hungarian_mean_cos"], abs=0.01)
    assert res["ratio"]["hungarian_mean_cos"] == pytest.approx(1.0, abs=0.03)
    assert res["shared_latents_frac"] == 0.0 and base["shared_latents_frac"] == 0.0
    assert res["frac_matched_above"]["0.7"] == 0.0


def test_closed_form_matches_measured_random_baselines():
    # measured on random Gaussian decoders (project FACTS): 1024x128 0.299, 4096x576 0.158
    assert S.expected_max_abs_cosine(1024, 128) == pytest.approx(0.299, abs=0.002)
    assert S.expected_max_abs_cosine(4096, 576) == pytest.approx(0.158, abs=0.002)


def test_random_baseline_is_deterministic_and_complete():
    kw = dict(baseline_draws=2, memory_budget_mb=0.2)  # small budget: the sparse path
    b1 = S.random_decoder_baseline(200, 300, 32, seed=1, **kw)
    b2 = S.random_decoder_baseline(200, 300, 32, seed=1, **kw)
    b3 = S.random_decoder_baseline(200, 300, 32, seed=2, **kw)
    assert b1 == b2
    assert b1["hungarian_mean_cos"] != b3["hungarian_mean_cos"]
    for k in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "frac_matched_above",
              "frac_best_match_above", "shared_latents_frac", "std"):
        assert k in b1
    assert set(b1["frac_matched_above"]) == {"0.5", "0.7", "0.8", "0.9"}
    # cross-width: B->A maxima are over the 200 rows of A, A->B over 300 rows of B
    assert b1["mmcs_b_to_a"] < b1["mmcs_a_to_b"]
    json.dumps(b1, allow_nan=False)


def test_sparse_matching_close_to_hungarian():
    rng = np.random.default_rng(6)
    n, d = 2048, 96
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32)
    b[:800] = a[rng.permutation(n)[:800]] + 0.8 * rng.standard_normal((800, d))  # noisy partial copies
    exact = S.one_to_one_matching(a, b, exact=True)
    sparse = S.one_to_one_matching(a, b, exact=False, top_m=16)
    assert exact.exact and not sparse.exact
    assert abs(exact.mean_matched_cos - sparse.mean_matched_cos) < 0.005
    assert sparse.mean_matched_cos <= exact.mean_matched_cos + 1e-6  # Hungarian is optimal
    for m in (exact, sparse):
        assert len(m.rows) == n and len(np.unique(m.rows)) == n and len(np.unique(m.cols)) == n
        np.testing.assert_allclose(m.cos, dense_abs_cos(a[m.rows], b[m.cols]).diagonal(), atol=1e-5)


def test_rectangular_matching_covers_the_smaller_side():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((150, 32)).astype(np.float32)
    b = rng.standard_normal((400, 32)).astype(np.float32)
    for exact in (True, False):
        m = S.one_to_one_matching(a, b, exact=exact)
        assert len(m.rows) == 150 and len(np.unique(m.cols)) == 150
        m2 = S.one_to_one_matching(b, a, exact=exact)
        assert len(m2.cols) == 150 and len(np.unique(m2.rows)) == 150
    ex = S.one_to_one_matching(a, b, exact=True).mean_matched_cos
    sp = S.one_to_one_matching(a, b, exact=False).mean_matched_cos
    assert abs(ex - sp) < 0.005


def test_sparse_matching_completes_when_candidates_admit_no_full_matching():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((30, 8)).astype(np.float32)
    b = rng.standard_normal((30, 8)).astype(np.float32)
    # every latent's only candidate is latent 0 on the other side: no full matching among candidates
    ref = dense_abs_cos(a, b)
    top = S.TopCosines(
        val_a=ref[:, :1].astype(np.float32), idx_a=np.zeros((30, 1), np.int64),
        val_b=ref[:1, :].T.astype(np.float32), idx_b=np.zeros((30, 1), np.int64),
    )
    m = S._sparse_matching(a, b, top)
    assert len(np.unique(m.rows)) == 30 and len(np.unique(m.cols)) == 30
    np.testing.assert_allclose(m.cos, dense_abs_cos(a[m.rows], b[m.cols]).diagonal(), atol=1e-5)


def test_cross_width_best_match_fraction_is_over_the_smaller_sae():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((100, 64)).astype(np.float32)
    b = rng.standard_normal((300, 64)).astype(np.float32)
    b[rng.choice(300, 50, replace=False)] = a[:50]  # half of A's latents reappear in the wider B
    res = S.compare_decoders(a, b, with_baseline=False)
    assert res["frac_best_match_above"]["0.9"] == pytest.approx(0.5)
    assert res["frac_matched_above"]["0.9"] == pytest.approx(0.5)
    swapped = S.compare_decoders(b, a, with_baseline=False)
    assert swapped["frac_best_match_above"]["0.9"] == pytest.approx(0.5)
    assert res["shared_latents_frac"] is None


def test_frac_above_keys_and_denominator():
    f = S.frac_above([0.95, 0.75, 0.1, 0.5], (0.5, 0.7, 0.9))
    assert f == {"0.5": 0.75, "0.7": 0.5, "0.9": 0.25}
    assert S.frac_above([0.95], (0.9,), denominator=4) == {"0.9": 0.25}


def test_mismatched_dimensions_and_bad_encoders_raise():
    a = np.ones((4, 8), np.float32)
    b = np.ones((5, 9), np.float32)
    with pytest.raises(SaesimError, match="dimension mismatch"):
        S.max_abs_cosine(a, b)
    with pytest.raises(SaesimError, match="W_enc should have shape"):
        S.shared_latents(a, a, np.ones((4, 8)), np.ones((8, 4)))


def test_compare_result_is_json_with_required_keys():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((64, 16)).astype(np.float32)
    b = rng.standard_normal((80, 16)).astype(np.float32)
    res = S.compare_decoders(a, b, baseline_draws=1)
    text = json.dumps(res, allow_nan=False)
    for k in ("n_a", "n_b", "d", "mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos",
              "frac_matched_above", "frac_best_match_above", "shared_latents_frac", "matching_exact",
              "baseline", "ratio"):
        assert k in res
    assert json.loads(text)["n_b"] == 80


@pytest.mark.parametrize("n_a,n_b", [(300, 200), (200, 300)])
def test_dense_path_agrees_with_the_tiled_scan_and_hungarian(n_a, n_b):
    """compare_decoders' small-SAE path (one float64 |cos| matrix) gives the tiled scan's best
    matches and scipy's optimum, whichever side is larger."""
    from scipy.optimize import linear_sum_assignment

    from saesim.similarity import abs_cosine_matrix, compare_decoders, max_abs_cosine

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n_a, 24)), rng.normal(size=(n_b, 24))
    res, arrays = compare_decoders(a, b, with_baseline=False, return_arrays=True)
    tiled = max_abs_cosine(a, b, memory_budget_mb=0.05)  # many small torch tiles
    assert res["mmcs_a_to_b"] == pytest.approx(tiled.mmcs_a_to_b, abs=1e-6)
    assert res["mmcs_b_to_a"] == pytest.approx(tiled.mmcs_b_to_a, abs=1e-6)
    assert (arrays["best_b_for_a"] == tiled.best_b_for_a).mean() > 0.99  # ties aside
    cos = abs_cosine_matrix(a, b, dtype=np.float64)
    r, c = linear_sum_assignment(-cos)
    # 1e-7, not 1e-9: the sum of 200 matched |cos| differs by ~1e-9 between BLAS kernels (seen on
    # this CPU); a different assignment would move it by far more on these random decoders
    assert res["hungarian_mean_cos"] == pytest.approx(cos[r, c].sum() / min(n_a, n_b), abs=1e-7)


def test_comparing_small_saes_on_cpu_does_not_import_torch():
    code = (
        "import sys, numpy as np; from saesim.similarity import compare_decoders; "
        "r = np.random.default_rng(0); a = r.normal(size=(64, 16)); "
        "compare_decoders(a, a[::-1], a.T, a[::-1].T, with_baseline=False); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_hungarian_is_scipys_without_importing_scipy_optimize():
    # scipy.optimize costs ~0.7 s of CPU per job; the matching loads only its compiled _lsap
    code = (
        "import sys, json, numpy as np; from saesim.similarity import compare_decoders; "
        "r = np.random.default_rng(0); a, b = r.normal(size=(40, 16)), r.normal(size=(50, 16)); "
        "res, arrays = compare_decoders(a, b, with_baseline=False, return_arrays=True); "
        "print(json.dumps(['scipy.optimize' in sys.modules, res['hungarian_mean_cos']]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, mean_cos = json.loads(out.stdout)
    assert imported is False
    from scipy.optimize import linear_sum_assignment

    r = np.random.default_rng(0)
    a, b = r.normal(size=(40, 16)), r.normal(size=(50, 16))
    cos = dense_abs_cos(a, b)
    rows, cols = linear_sum_assignment(-cos)
    assert mean_cos == pytest.approx(cos[rows, cols].sum() / 40, abs=1e-6)
