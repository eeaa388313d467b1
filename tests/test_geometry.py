"""Coordinate systems of the decoder metrics (saesim.similarity.geometry): known answers."""

import numpy as np
import pytest

from saesim.similarity.geometry import (
    Moments,
    baselines_in_spaces,
    compare_in_spaces,
    coordinate_maps,
    flat_space_values,
    load_moments,
    mean_removed_map,
    whitening_map,
)
from saesim.registry.metrics import COORDINATE_SPACES, TABLE_METRICS, space_columns
from saesim.sources.gaussian_null import streaming_moments
from saesim.similarity import compare_decoders

METRICS = ("mmcs", "hungarian_mean_cos", "frac_matched_above", "frac_best_match_above", "shared_latents_frac")


def _data(rng, n=4000, d=12):
    """Anisotropic data with a large mean: x = mu + z L^T."""
    mix = rng.standard_normal((d, d)) * np.linspace(0.2, 3.0, d)
    mu = rng.standard_normal(d) * 5
    return mu + rng.standard_normal((n, d)) @ mix.T


def _moments(x):
    x = np.asarray(x, dtype=np.float64)
    return Moments(x.mean(0), np.cov(x.T, bias=True), len(x))


def _sae_pair(rng, n=40, d=12):
    """Two noisy copies of one dictionary (decoders [n, d], encoders [d, n])."""
    base = rng.standard_normal((n, d))
    dec_a = base + 0.3 * rng.standard_normal((n, d))
    dec_b = base[rng.permutation(n)] + 0.3 * rng.standard_normal((n, d))
    return dec_a, dec_b, np.linalg.pinv(dec_a), np.linalg.pinv(dec_b)


def test_whitening_maps_covariance_to_identity():
    rng = np.random.default_rng(0)
    x = _data(rng)
    mom = _moments(x)
    w = whitening_map(mom)
    xw = (x - mom.mean) @ w.dec
    assert w.dim == 12
    np.testing.assert_allclose(np.cov(xw.T, bias=True), np.eye(12), atol=1e-8)
    # encoder map is the inverse transpose: e . x == e' . x'
    e = rng.standard_normal(12)
    np.testing.assert_allclose((x - mom.mean) @ e, xw @ (e @ w.enc), rtol=1e-8, atol=1e-8)


def test_whitening_drops_directions_without_variance():
    rng = np.random.default_rng(1)
    x = _data(rng)
    x[:, -3:] = 0.0  # data in a 9-dim subspace
    assert whitening_map(_moments(x)).dim == 9
    assert mean_removed_map(_moments(x)).dim == 11


def test_mean_removed_rows_are_orthogonal_to_the_mean():
    rng = np.random.default_rng(2)
    mom = _moments(_data(rng))
    m = mean_removed_map(mom)
    rows = m.map_rows(rng.standard_normal((30, 12)))
    np.testing.assert_allclose(rows @ mom.mean, 0, atol=1e-4)


def test_whitened_metrics_invariant_under_invertible_linear_map():
    """Store and both SAEs mapped by a random invertible A: whitened metrics unchanged, raw ones not."""
    rng = np.random.default_rng(3)
    x = _data(rng)
    dec_a, dec_b, enc_a, enc_b = _sae_pair(rng)
    A = np.linalg.qr(rng.standard_normal((12, 12)))[0] * np.geomspace(0.2, 5, 12) + 0.1 * rng.standard_normal((12, 12))
    A_inv_T = np.linalg.inv(A).T
    x2 = x @ A.T
    before = compare_in_spaces(dec_a, dec_b, enc_a, enc_b, _moments(x))["whitened"]
    after = compare_in_spaces(dec_a @ A.T, dec_b @ A.T, A_inv_T @ enc_a, A_inv_T @ enc_b, _moments(x2))["whitened"]
    for k in METRICS:
        assert after[k] == pytest.approx(before[k], abs=1e-5), k
    raw_before = compare_decoders(dec_a, dec_b, with_baseline=False)["mmcs"]
    raw_after = compare_decoders(dec_a @ A.T, dec_b @ A.T, with_baseline=False)["mmcs"]
    assert abs(raw_after - raw_before) > 0.02  # the raw metric is not invariant (the test can fail)


def test_mean_direction_inflates_raw_agreement_and_mean_removal_undoes_it():
    """Unrelated random decoders that all share a large component along the mean direction:
    raw |cos| far above chance, mean-removed |cos| at the isotropic chance level of d - 1 dims."""
    rng = np.random.default_rng(4)
    d, n = 32, 64
    x = _data(rng, d=d)
    mom = _moments(x)
    u = mom.mean / np.linalg.norm(mom.mean)
    dec_a = rng.standard_normal((n, d)) + 4 * u
    dec_b = rng.standard_normal((n, d)) + 4 * u
    raw = compare_decoders(dec_a, dec_b, with_baseline=False)
    spaces = compare_in_spaces(dec_a, dec_b, None, None, mom)
    base = baselines_in_spaces(n, n, mom, baseline_draws=2)
    assert spaces["mean_removed"]["dim"] == d - 1 and base["mean_removed"]["dim"] == d - 1
    assert raw["mmcs"] > spaces["mean_removed"]["mmcs"] + 0.15
    assert spaces["mean_removed"]["mmcs"] == pytest.approx(base["mean_removed"]["mmcs"], abs=0.05)


def test_coordinate_maps_follow_the_registry_and_flat_columns():
    rng = np.random.default_rng(5)
    mom = _moments(_data(rng))
    assert list(coordinate_maps(mom)) == list(COORDINATE_SPACES)
    dec_a, dec_b, enc_a, enc_b = _sae_pair(rng)
    pair = {"spaces": compare_in_spaces(dec_a, dec_b, enc_a, enc_b, mom)}
    flat = flat_space_values(pair, TABLE_METRICS.values())
    assert "mmcs_white" in flat and "mmcs_mr" in flat and "frac_matched_0.7_white" in flat
    assert flat["mmcs_white"] == pair["spaces"]["whitened"]["mmcs"]
    assert all(np.isnan(v) for v in flat_space_values({}, TABLE_METRICS.values()).values())
    cols = space_columns()
    assert {"mmcs_white", "mmcs_white_null", "mmcs_white_excess", "mmcs_white_baseline", "mmcs_mr"} <= set(cols)


def test_load_moments_streams_the_store_or_reads_the_null_group(tmp_path):
    from saesim.stores.activation_store import StoreWriter, open_store
    from saesim.sources.gaussian_null import write_null_store

    rng = np.random.default_rng(6)
    x = _data(rng, n=3000, d=8).astype(np.float32)
    path = tmp_path / "s.h5"
    with StoreWriter(path, 8, dtype="float32", chunk_rows=512) as w:
        w.append(x)
    mom = load_moments(path)
    np.testing.assert_allclose(mom.mean, x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(mom.cov, np.cov(x.T.astype(np.float64), bias=True), rtol=1e-5, atol=1e-6)
    write_null_store(path, tmp_path / "null.h5", seed=0)
    from_null = load_moments(tmp_path / "null.h5")  # the fitted moments, not the null's own rows
    np.testing.assert_allclose(from_null.cov, mom.cov, rtol=1e-9, atol=1e-9)
    with open_store(path) as store:
        mean, cov, n = streaming_moments(store)
    assert n == 3000


def test_full_rank_whitened_baseline_reuses_the_raw_one_and_matches_a_fresh_draw():
    from saesim.similarity import random_decoder_baseline

    rng = np.random.default_rng(7)
    mom = _moments(_data(rng, d=10))
    raw = random_decoder_baseline(30, 30, 10, baseline_draws=2, seed=0)
    reused = baselines_in_spaces(30, 30, mom, raw=raw, baseline_draws=2, seed=0)
    fresh = baselines_in_spaces(30, 30, mom, baseline_draws=2, seed=0)
    assert reused["whitened"]["hungarian_mean_cos"] == fresh["whitened"]["hungarian_mean_cos"]
    assert reused["mean_removed"]["dim"] == 9 and reused["mean_removed"]["mmcs"] > raw["mmcs"]  # fewer dims: higher chance


def test_pair_script_and_tables_give_space_columns(tmp_path):
    """compare_seed_pair.py with the store's moments writes ``spaces``; the tables turn them into
    <metric>_mr / _white columns with baselines, null and excess."""
    import json
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    import pandas as pd

    from saesim.stores.activation_store import StoreWriter
    from saesim.report.tables import cross_experiment_summary, stability_table, summary_columns

    root = Path(__file__).resolve().parents[1]
    from test_layout import _sae  # an SAE folder from a decoder

    rng = np.random.default_rng(8)
    x = _data(rng, n=2000, d=8).astype(np.float32)
    store = tmp_path / "s.h5"
    with StoreWriter(store, 8, dtype="float32", chunk_rows=512) as w:
        w.append(x)
    base = rng.standard_normal((16, 8))
    a = _sae(tmp_path / "a", base + 0.05 * rng.standard_normal((16, 8)))
    b = _sae(tmp_path / "b", base[::-1] + 0.05 * rng.standard_normal((16, 8)))
    out = tmp_path / "pair.json"
    smk = SimpleNamespace(
        input=SimpleNamespace(a=a, b=b, moments=str(store)), output=[str(out)], log=[str(tmp_path / "job.log")],
        params=SimpleNamespace(memory_budget_mb=64, row_exclusions={}, identity=None), rule="compare_seed_pair",
        wildcards=SimpleNamespace(a="0", b="1"), resources={}, scriptdir=str(root / "scripts"),
    )
    runpy.run_path(str(root / "scripts" / "compare_seed_pair.py"), init_globals={"snakemake": smk})
    r = json.loads(out.read_text())
    assert r["spaces"]["mean_removed"]["dim"] == 7 and r["spaces"]["whitened"]["dim"] == 8
    assert r["spaces"]["whitened"]["mmcs"] > 0.9  # near-copies agree in every space

    flat = flat_space_values(r, TABLE_METRICS.values())
    pairs = pd.DataFrame([
        {"hook": "h", "variant": "v", "null": False, **{m: r[m] for m in ("mmcs", "hungarian_mean_cos")},
         "frac_matched_0.7": r["frac_matched_above"]["0.7"], **flat},
        {"hook": "h", "variant": "v", "null": True, "mmcs": 0.5, "hungarian_mean_cos": 0.4, "frac_matched_0.7": 0.1,
         **{k: 0.5 for k in flat}},
    ])
    saes = pd.DataFrame([{"hook": "h", "variant": "v", "architecture": "topk", "width": 16, "sparsity_key": "k", "sparsity": 2,
                          "l0": 2.0, "explained_variance": 0.9, "dead_fraction": 0.0, "null": nl} for nl in (False, True)])
    mom = load_moments(store)
    baseline = {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0},
                "spaces": baselines_in_spaces(16, 16, mom, baseline_draws=2)}
    st = stability_table(saes, pairs, {("h", 16): baseline})
    row = st.iloc[0]
    assert row["mmcs_white"] == pytest.approx(r["spaces"]["whitened"]["mmcs"])
    assert row["mmcs_white_baseline"] == pytest.approx(baseline["spaces"]["whitened"]["mmcs"])
    assert row["mmcs_white_null"] == 0.5
    assert row["mmcs_white_excess"] == pytest.approx((row["mmcs_white"] - 0.5) / 0.5)
    summary = cross_experiment_summary({"toy": st})
    assert list(summary.columns) == summary_columns()
    assert summary["mmcs_mr_excess"].iloc[0] == pytest.approx(row["mmcs_mr_excess"])
