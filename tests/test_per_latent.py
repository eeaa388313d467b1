"""Known answers for saesim.analysis.per_latent: statistics, EV share, reappearance, subspaces, intervals."""

import numpy as np
import pytest

from saesim.analysis import per_latent as pl
from saesim.similarity.scan import normalize_rows


def _relu_encoder(W_enc, b_enc):
    import torch

    We = torch.from_numpy(W_enc.astype(np.float32))
    be = torch.from_numpy(b_enc.astype(np.float32))
    return lambda x: torch.relu(x @ We + be)


def _dense_reference(x, W_enc, b_enc, W_dec, b_dec):
    a = np.maximum(x @ W_enc + b_enc, 0).astype(np.float64)
    x = x.astype(np.float64)
    x_hat = a @ W_dec + b_dec
    r = x - x_hat
    xbar = x.mean(0)
    ess = (a * ((x - xbar + r) @ W_dec.T)).sum(0)
    return a, ess, ((x - xbar) ** 2).sum(), (r**2).sum()


def test_stats_match_a_dense_computation_and_decompose_ess_exactly(rng):
    n, d, L = 600, 12, 40
    x = (rng.normal(size=(n, d)) + 0.5).astype(np.float32)
    W_enc = rng.normal(size=(d, L)).astype(np.float32) * 0.3
    b_enc = rng.normal(size=L).astype(np.float32) * 0.3 - 0.4
    W_dec = rng.normal(size=(L, d)).astype(np.float32) * 0.2
    b_dec = rng.normal(size=d).astype(np.float32) * 0.1
    enc = _relu_encoder(W_enc, b_enc)
    st = pl.latent_stats(enc, W_dec, b_dec, [x[:100], x[100:350], x[350:]], memory_budget_mb=0.01)
    a, ess, sst, sse = _dense_reference(x, W_enc, b_enc, W_dec, b_dec)
    assert st.n_rows == n
    np.testing.assert_array_equal(st.count, (a > 0).sum(0))
    np.testing.assert_allclose(st.frequency, (a > 0).mean(0))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(st.mean_active, a.sum(0) / (a > 0).sum(0), rtol=1e-5)
    np.testing.assert_allclose(st.ess, ess, rtol=1e-4, atol=1e-3)
    assert st.sst == pytest.approx(sst, rel=1e-6)
    assert st.sse == pytest.approx(sse, rel=1e-5)
    # the split is exact: latents' parts plus the bias's part give SST - SSE
    assert st.ess.sum() + st.ess_bias == pytest.approx(sst - sse, rel=1e-4)
    assert st.ev.sum() + st.ess_bias / st.sst == pytest.approx(st.explained_variance, rel=1e-4)
    assert st.ev_share.sum() == pytest.approx(1.0)
    # another blocking gives the same numbers
    st2 = pl.latent_stats(enc, W_dec, b_dec, [x], memory_budget_mb=64)
    np.testing.assert_allclose(st2.ess, st.ess, rtol=1e-4, atol=1e-3)


def test_ev_share_of_orthogonal_latents_is_their_variance_share(rng):
    # four orthogonal features with known scales; an exact SAE (identity encoder/decoder):
    # latent i's share is var_i / sum(var)
    n, scales = 4000, np.array([4.0, 2.0, 1.0, 0.5])
    fire = rng.random((n, 4)) < 0.3
    a = fire * rng.exponential(size=(n, 4)) * scales
    x = a.astype(np.float32)
    eye = np.eye(4, dtype=np.float32)
    st = pl.latent_stats(_relu_encoder(eye, np.zeros(4)), eye, np.zeros(4), [x])
    var = a.var(axis=0)
    np.testing.assert_allclose(st.ev_share, var / var.sum(), rtol=1e-5)
    assert st.explained_variance == pytest.approx(1.0, abs=1e-6)
    # a latent that never fires has frequency 0, no mean activation and no share
    st0 = pl.latent_stats(_relu_encoder(eye, np.array([0, 0, 0, -1e9])), eye, np.zeros(4), [x])
    assert st0.count[3] == 0 and np.isnan(st0.mean_active[3]) and st0.ess[3] == 0


def _planted_pair(rng, n=200, d=48, frac=0.7):
    """B is a permuted, sign-flipped copy of A for the first ``frac`` of A's rows, random elsewhere."""
    a = normalize_rows(rng.normal(size=(n, d)))
    k = int(frac * n)
    perm = rng.permutation(n)
    b = normalize_rows(rng.normal(size=(n, d)))
    b[perm[:k]] = a[:k] * rng.choice([-1.0, 1.0], size=(k, 1))
    return a, b, perm, k


def test_planted_copies_reappear_and_the_rest_do_not(rng):
    a, b, perm, k = _planted_pair(rng)
    p = pl.pair_partners(a, b, memory_budget_mb=64)
    reap = pl.reappearance(p.best_cos_a[:, None], 0.7)
    assert reap[:k].min() == 1.0 and reap[k:].max() == 0.0
    np.testing.assert_array_equal(p.best_b_for_a[:k], perm[:k])
    np.testing.assert_array_equal(p.hung_b_for_a[:k], perm[:k])
    # B's side: the copies find their originals
    np.testing.assert_array_equal(p.best_a_for_b[perm[:k]], np.arange(k))
    # the sparse (bounded scan) route gives the same best partners
    ps = pl.pair_partners(a, b, memory_budget_mb=0.05)
    assert not ps.exact
    np.testing.assert_array_equal(ps.best_b_for_a, p.best_b_for_a)
    # two other seeds: in both (stable), in one of two (half), in none
    two = np.stack([reap, np.r_[np.ones(k), np.ones(20), np.zeros(len(a) - k - 20)]], 1)
    stable, half = pl.stable_masks(pl.reappearance(two, 0.5))
    assert stable.sum() == k and half.sum() == k + 20


def test_random_saes_reappear_at_the_null_rate(rng):
    n, d = 300, 32
    # calibrate on one pair of independent random "null" SAEs, test on another
    n0 = pl.pair_partners(rng.normal(size=(n, d)), rng.normal(size=(n, d)))
    t = pl.null_threshold([n0.best_cos_a, n0.best_cos_b])
    rates = []
    for _ in range(4):
        p = pl.pair_partners(rng.normal(size=(n, d)), rng.normal(size=(n, d)))
        rates.append(pl.reappearance(p.best_cos_a[:, None], t).mean())
    assert np.mean(rates) == pytest.approx(0.01, abs=0.02)
    # the closed form for random decoders agrees with the draws at a fixed threshold
    emp = np.mean([pl.reappearance(pl.pair_partners(rng.normal(size=(n, d)), rng.normal(size=(n, d))).best_cos_a[:, None], 0.5).mean()
                   for _ in range(3)])
    assert pl.random_reappearance(0.5, n, d, 1)["reappear_mean"] == pytest.approx(emp, abs=0.05)
    r3 = pl.random_reappearance(0.5, n, d, 3)
    p1 = r3["reappear_mean"]
    assert r3["frac_stable"] == pytest.approx(p1**3)
    # at least half of 3 seeds: at least 2 of 3
    assert r3["frac_stable_half"] == pytest.approx(3 * p1**2 * (1 - p1) + p1**3, rel=1e-9)


def test_null_threshold_is_the_pooled_quantile():
    a, b = np.linspace(0, 1, 101), np.linspace(0, 1, 101)
    assert pl.null_threshold([a, b], 0.99) == pytest.approx(0.99)
    with pytest.raises(Exception, match="null"):
        pl.null_threshold([])


def test_basis_ambiguity_agrees_near_one_random_subspaces_at_r_over_d(rng):
    d, r = 64, 8
    block = np.linalg.qr(rng.normal(size=(d, r)))[0]  # planted rank-8 block
    # two seeds cut it into different bases: 20 latents each, random combinations of the block
    rows_a = rng.normal(size=(20, r)) @ block.T
    rows_b = rng.normal(size=(20, r)) @ block.T
    # their individual best |cos| are far from 1 (individually unstable) ...
    best = pl.pair_partners(rows_a, rows_b).best_cos_a
    assert np.median(best) < 0.9
    qa = pl.weighted_subspace(rows_a, np.ones(20), r)
    qb = pl.weighted_subspace(rows_b, np.ones(20), r)
    assert qa.shape == (d, r)
    # ... their spans agree
    assert pl.subspace_agreement(qa, qb) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(pl.principal_cosines(qa, qb), 1.0, atol=1e-9)
    # isotropic random subspaces of rank r: mean agreement r / d
    draws = [pl.subspace_agreement(np.linalg.qr(rng.normal(size=(d, r)))[0], np.linalg.qr(rng.normal(size=(d, r)))[0])
             for _ in range(400)]
    assert pl.random_subspace_chance(r, r, d) == r / d
    assert np.mean(draws) == pytest.approx(r / d, abs=0.01)
    # unequal ranks: max(r_a, r_b) / d
    draws = [pl.subspace_agreement(np.linalg.qr(rng.normal(size=(d, 4)))[0], np.linalg.qr(rng.normal(size=(d, 16)))[0])
             for _ in range(400)]
    assert np.mean(draws) == pytest.approx(pl.random_subspace_chance(4, 16, d), abs=0.015)
    # weights: a zero-weight latent adds nothing to the span
    rows = np.vstack([rows_a, rng.normal(size=(1, d))])
    q = pl.weighted_subspace(rows, np.r_[np.ones(20), 0.0], 64)
    assert q.shape[1] == r


def test_subspace_rank_is_capped():
    assert pl.subspace_rank(900, 700, 576, 0.25) == 144
    assert pl.subspace_rank(10, 30, 576, 0.25) == 10


def test_set_summary_shares(rng):
    st = pl.LatentStats(n_rows=10, count=np.array([5, 3, 2, 0]), act_sum=np.ones(4), act_sq_sum=np.ones(4),
                        ess=np.array([6.0, 3.0, 1.0, 0.0]), ess_bias=0.0, sst=20.0, sse=10.0)
    s = pl.set_summary(np.array([True, False, True, False]), st)
    assert s == {"frac": 0.5, "ev_share": pytest.approx(0.7), "firing_share": pytest.approx(0.7)}


def _fake_stats(n, rng):
    count = rng.integers(1, 100, size=n)
    return pl.LatentStats(n_rows=1000, count=count, act_sum=count * 1.0, act_sq_sum=count * 1.0,
                          ess=count * 1.0, ess_bias=0.0, sst=2 * count.sum(), sse=count.sum())


def test_variant_analysis_planted_stable_share_and_shared_subspace(rng, tmp_path):
    """Three seeds share 60 of 92 latents (permuted, sign-flipped); the other 32 are a randomly
    rotated orthonormal basis of one planted rank-32 block (basis ambiguity); two null SAEs are random."""
    n, d, k, r = 92, 128, 60, 32
    shared = normalize_rows(rng.normal(size=(k, d)))
    block = np.linalg.qr(rng.normal(size=(d, r)))[0]
    real = {}
    for s in range(3):
        rotation = np.linalg.qr(rng.normal(size=(r, r)))[0]
        rows = np.vstack([shared * rng.choice([-1.0, 1.0], size=(k, 1)), rotation @ block.T])
        real[s] = rows[rng.permutation(n)].astype(np.float32)
    null = {s: rng.normal(size=(n, d)).astype(np.float32) for s in (0, 1)}
    stats = {"real": {s: _fake_stats(n, rng) for s in real}, "null": {s: _fake_stats(n, rng) for s in null}}
    calibrated = pl.analyse_variant({"real": real, "null": null}, stats)
    assert calibrated.threshold_source == "null_q0.99" and 0.2 < calibrated.threshold < 0.5
    # rotated bases of a 32-dim block still match at |cos| ~0.5 by chance: judge at 0.7
    va = pl.analyse_variant({"real": real, "null": null}, stats, threshold=0.7)
    assert va.threshold_source == "given"
    rows = {(x["role"], x["seed"]): x for x in va.sae_rows}
    for s in range(3):
        assert rows[("real", s)]["frac_stable"] == pytest.approx(k / n, abs=0.03)
        t = va.tables[("real", s)]
        assert t["best_cos"].shape == (n, 2) and list(t["other_seeds"]) == [o for o in range(3) if o != s]
    assert rows[("null", 0)]["frac_stable"] < 0.05
    pairs = [p for p in va.pair_rows if p["role"] == "real"]
    assert len(pairs) == 3
    for p in pairs:
        assert p["subspace_rank"] == r
        assert p["unstable_subspace"] > 0.95 and p["unstable_subspace_chance"] == pytest.approx(r / d)
    summ = pl.variant_summary(va, n, d)
    assert summ["frac_stable"] == pytest.approx(k / n, abs=0.03)
    assert summ["frac_stable_lo"] <= summ["frac_stable"] <= summ["frac_stable_hi"]
    assert summ["frac_stable_excess_distinct"] == 1.0  # far above the null
    assert np.isnan(summ["frac_stable_null_lo"])  # one null pair: no interval
    assert summ["frac_stable_random"] < 0.01
    # the artifact round-trips, byte for byte
    attrs = {"threshold": va.threshold, "identity": {"seed": 0}}
    pl.write_per_latent_h5(tmp_path / "a.h5", va.tables[("real", 0)], attrs)
    pl.write_per_latent_h5(tmp_path / "b.h5", va.tables[("real", 0)], attrs)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    arrays, got = pl.read_per_latent_h5(tmp_path / "a.h5")
    np.testing.assert_array_equal(arrays["best_partner"], va.tables[("real", 0)]["best_partner"])
    assert got["threshold"] == va.threshold and got["content_hash"] == pl.arrays_hash(va.tables[("real", 0)])
    (tmp_path / "c.h5").write_bytes(b"not hdf5")
    with pytest.raises(Exception, match="c.h5"):
        pl.read_per_latent_h5(tmp_path / "c.h5")


def test_variant_analysis_without_null_uses_the_fixed_threshold(rng):
    real = {s: rng.normal(size=(30, 16)) for s in (0, 1)}
    va = pl.analyse_variant({"real": real}, {"real": {s: _fake_stats(30, rng) for s in real}})
    assert va.threshold == pl.FALLBACK_THRESHOLD and va.threshold_source == "fixed"
    summ = pl.variant_summary(va, 30, 16)
    assert np.isnan(summ["frac_stable_lo"]) and np.isnan(summ["frac_stable_excess_distinct"])
    with pytest.raises(Exception, match="two seeds"):
        pl.analyse_variant({"real": {0: real[0]}}, {"real": {0: _fake_stats(30, rng)}})
    # a single null seed calibrates nothing: the fixed threshold, no null rows
    one_null = pl.analyse_variant({"real": real, "null": {0: real[0]}}, {"real": {s: _fake_stats(30, rng) for s in real},
                                                                          "null": {0: _fake_stats(30, rng)}})
    assert one_null.threshold_source == "fixed" and all(r["role"] == "real" for r in one_null.sae_rows)


def test_summary_columns_come_from_per_latent_tables():
    """per_latent.csv rows land in results/summary.* under the registered columns; experiments
    without them get NaN; the Markdown shows the interval and marks a distinguishable excess."""
    import pandas as pd

    from saesim.registry.metrics import PER_LATENT_METRICS, per_latent_summary_columns
    from saesim.report.tables import SUMMARY_COLUMNS, cross_experiment_summary, cross_summary_markdown
    from test_summary_table import _stability

    stability = {"toy": _stability([("toy", "topk-w50-k4"), ("toy", "topk-w50-k8")], True),
                 "lm": _stability([("b6", "topk-w1152-k64")], False)}
    row = {c: 0.5 for c in per_latent_summary_columns() if c != "per_latent_threshold"}
    row.update(hook="toy", variant="topk-w50-k8", threshold=0.42, frac_stable=0.8, frac_stable_lo=0.7, frac_stable_hi=0.9,
               frac_stable_null=0.1, frac_stable_excess_distinct=1.0, ev_share_stable=0.95, ev_share_stable_null=0.2,
               unstable_subspace=0.6, unstable_subspace_chance=0.25)
    summary = cross_experiment_summary(stability, kinds={"toy": "toy", "lm": "smollm2"}, per_latent={"toy": pd.DataFrame([row])})
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert set(PER_LATENT_METRICS) <= set(summary.columns)
    s = summary.set_index("variant")
    assert s.loc["topk-w50-k8", "frac_stable"] == 0.8 and s.loc["topk-w50-k8", "per_latent_threshold"] == 0.42
    assert np.isnan(s.loc["topk-w50-k4", "frac_stable"]) and np.isnan(s.loc["topk-w1152-k64", "ev_share_stable"])
    md = cross_summary_markdown(summary)
    assert "0.80 [0.70, 0.90]* (null 0.10; EV share 0.95, null 0.20)" in md
    assert "0.60 [0.50, 0.50] (chance 0.25; null 0.50)" in md


def test_trained_saes_on_a_recoverable_synthetic_store(tmp_path):
    """sae_lens.synthetic: 16 near-orthogonal features in 64 dims, TopK SAEs of width 20, three
    seeds. The latents that recover a true feature (|cos| >= 0.9) reappear in every other seed;
    the 4 left over reappear in none; the stable ones carry most of the explained variance."""
    pytest.importorskip("sae_lens")
    from saesim.stores.activation_store import open_store
    from saesim.saes.loading import decoder_rows
    from saesim.sources.synthetic import write_synthetic_store
    from saesim.saes.training import SAESpec, train_sae

    model = {"num_features": 16, "hidden_dim": 64, "firing_probability": {"generator_name": "linear", "max_prob": 0.25, "min_prob": 0.1},
             "bias": False, "seed": 0}
    store = tmp_path / "s.h5"
    write_synthetic_store(store, model, 30_000, chunk_rows=4096, progress=False)
    kw = dict(lr=1e-2, training_samples=40_000, batch_size=256, eval_rows=4096)
    saes = []
    for s in (0, 1, 2):
        spec = SAESpec("topk", 20, 3, s, s, **kw)
        train_sae(store, spec, tmp_path / f"sae{s}")
        saes.append(dict(hook="h", variant="v", seed=s, role="real", path=str(tmp_path / f"sae{s}"), store=str(store),
                         spec=spec.to_dict(), identity={"seeds": [s]}, out=str(tmp_path / f"pl{s}.h5")))
    variants, sae_rows, pair_rows, spectra, scatter = pl.run_experiment(
        saes, {"null_quantile": 0.99, "subspace_fraction": 0.25, "threshold": 0.9}, 256)
    with open_store(store) as st:
        truth = normalize_rows(st.group("ground_truth")["features"])
    for s in (0, 1, 2):
        arrays, attrs = pl.read_per_latent_h5(tmp_path / f"pl{s}.h5")
        recovers = np.abs(normalize_rows(decoder_rows(tmp_path / f"sae{s}")) @ truth.T).max(1) >= 0.9
        assert recovers.sum() == 16
        assert arrays["reappear_t"][recovers].mean() == 1.0 and arrays["reappear_t"][~recovers].max() == 0.0
        assert attrs["threshold_source"] == "given" and attrs["n_rows"] == 4096
        # statistics from the held-out rows: frequencies near the planted firing probabilities
        assert 0.05 < arrays["frequency"][recovers].mean() < 0.3
    v = variants[0]
    assert v["frac_stable"] == pytest.approx(0.8)
    assert v["ev_share_stable"] > 0.9
    assert v["frac_stable_lo"] == pytest.approx(0.8) and v["n_pairs"] == 3


def _anisotropic(rng, n=4000, d=12):
    """Activations with a large mean and very unequal variances: x = mu + z L^T."""
    mix = rng.standard_normal((d, d)) * np.linspace(0.2, 3.0, d)
    return rng.standard_normal(d) * 5 + rng.standard_normal((n, d)) @ mix.T


def _moments_of(x):
    from saesim.similarity.geometry import Moments

    return Moments(x.mean(0), np.cov(x.T, bias=True), len(x))


def _noisy_seeds(rng, n=40, d=12, seeds=(0, 1, 2), noise=0.3):
    base = rng.standard_normal((n, d))
    return {s: base[rng.permutation(n)] + noise * rng.standard_normal((n, d)) for s in seeds}


def test_whitened_reappearance_is_invariant_under_an_invertible_linear_map(rng):
    """Store and every SAE (real and null) mapped by a random invertible A (x -> A x, decoder rows
    d -> A d): partners, |cos|, the null-calibrated threshold and reappearance in whitened
    coordinates are unchanged; the raw ones change (mirrors tests/test_geometry.py)."""
    x = _anisotropic(rng)
    d = x.shape[1]
    real = _noisy_seeds(rng)
    null = {s: rng.standard_normal((40, d)) for s in (0, 1)}
    stats = {"real": {s: _fake_stats(40, rng) for s in real}, "null": {s: _fake_stats(40, rng) for s in null}}
    # well conditioned enough that whitening keeps every direction on both sides (1e-6 of the top eigenvalue)
    A = np.linalg.qr(rng.standard_normal((d, d)))[0] * np.geomspace(0.3, 3, d) + 0.1 * rng.standard_normal((d, d))
    mapped = {role: {s: dec @ A.T for s, dec in decs.items()} for role, decs in (("real", real), ("null", null))}
    before = pl.analyse_variant({"real": real, "null": null}, stats, moments=_moments_of(x))
    after = pl.analyse_variant(mapped, stats, moments=_moments_of(x @ A.T))
    wb, wa = before.spaces["whitened"], after.spaces["whitened"]
    assert wb["threshold_source"] == "null_q0.99" and wb["dim"] == wa["dim"] == d
    assert wa["threshold"] == pytest.approx(wb["threshold"], abs=1e-5)
    for key in before.tables:
        tb, ta = before.tables[key], after.tables[key]
        np.testing.assert_array_equal(ta["best_partner_white"], tb["best_partner_white"])
        np.testing.assert_allclose(ta["best_cos_white"], tb["best_cos_white"], atol=1e-5)
        np.testing.assert_array_equal(ta["reappear_t_white"], tb["reappear_t_white"])
    rows_b = {(r["role"], r["seed"]): r for r in before.sae_rows}
    rows_a = {(r["role"], r["seed"]): r for r in after.sae_rows}
    for key in rows_b:
        assert rows_a[key]["frac_stable_white"] == rows_b[key]["frac_stable_white"]
    # raw coordinates see the map: |cos|, the threshold and the reappearance move
    raw_shift = max(np.abs(after.tables[k]["best_cos"] - before.tables[k]["best_cos"]).max() for k in before.tables)
    assert raw_shift > 0.1
    assert abs(after.threshold - before.threshold) > 1e-3
    assert any(not np.array_equal(after.tables[k]["reappear_t"], before.tables[k]["reappear_t"]) for k in before.tables)
    # the summary carries the space's columns, with random decoders in the space's dimension
    summ = pl.variant_summary(before, 40, d)
    for col in ("frac_stable_white", "frac_stable_white_null", "frac_stable_white_random", "reappear_mean_mr",
                "reappear_mean_mr_random", "ev_share_stable_white", "threshold_white", "threshold_mr"):
        assert np.isfinite(summ[col]), col
    assert summ["dim_mr"] == d - 1
    assert summ["frac_stable_white_random"] == pytest.approx(
        pl.random_reappearance(wb["threshold"], 40, d, 2)["frac_stable"])


def test_isotropic_centred_moments_leave_every_space_equal_to_raw(rng):
    """Mean 0 and covariance I: mean removal does nothing and whitening is a rotation, so every
    space's partners, threshold and stable share equal the raw ones; without moments the space
    columns are absent and NaN in the summary."""
    from saesim.similarity.geometry import Moments

    d = 16
    real = _noisy_seeds(rng, n=30, d=d)
    null = {s: rng.standard_normal((30, d)) for s in (0, 1)}
    stats = {"real": {s: _fake_stats(30, rng) for s in real}, "null": {s: _fake_stats(30, rng) for s in null}}
    va = pl.analyse_variant({"real": real, "null": null}, stats, moments=Moments(np.zeros(d), np.eye(d)))
    for name, sfx in (("mean_removed", "mr"), ("whitened", "white")):
        assert va.spaces[name]["threshold"] == pytest.approx(va.threshold, abs=1e-5) and va.spaces[name]["dim"] == d
        for t in va.tables.values():
            np.testing.assert_array_equal(t[f"best_partner_{sfx}"], t["best_partner"])
            np.testing.assert_array_equal(t[f"stable_{sfx}"], t["stable"])
        for r in va.sae_rows:
            assert r[f"frac_stable_{sfx}"] == r["frac_stable"]
    plain = pl.analyse_variant({"real": real, "null": null}, stats)
    assert plain.spaces == {} and "best_cos_white" not in plain.tables[("real", 0)]
    summ = pl.variant_summary(plain, 30, d)
    assert np.isnan(summ["frac_stable_white"]) and np.isnan(summ["frac_stable_white_random"])


def _planted_block_store(path, rng, n=30_000, d=32, n_clean=8, r=8):
    """Activations in R^d: ``n_clean`` sparse features along orthonormal directions (each fires on
    12% of rows, magnitude 1 + Exp(0.5)), plus an r-dimensional block, orthogonal to them, active on
    half the rows with an isotropic Gaussian inside it (rotation-invariant: no basis of the block is
    preferred). Returns (clean directions [n_clean, d], block basis [d, r])."""
    from saesim.stores.activation_store import StoreWriter

    q = np.linalg.qr(rng.normal(size=(d, d)))[0]  # a random rotation: nothing aligned with the axes
    clean, block = q[:, :n_clean].T, q[:, n_clean:n_clean + r]
    mag = (rng.random((n, n_clean)) < 0.12) * (1.0 + rng.exponential(0.5, size=(n, n_clean)))
    z = (rng.random((n, 1)) < 0.5) * rng.normal(size=(n, r))
    with StoreWriter(path, d, chunk_rows=4096) as w:
        w.append((mag @ clean + z @ block.T).astype(np.float32))
    return clean, block


def test_trained_saes_cut_a_planted_rotation_invariant_block_into_different_bases(tmp_path, rng):
    """Basis ambiguity on trained SAEs (issue 24, item 6): d = 32, 8 clean sparse features and a
    rank-8 block with isotropic Gaussian activity. TopK SAEs (width 32, k 6, three seeds): every
    clean feature has a latent in every seed (stable); the latents inside the block do not reappear
    (each seed picks its own basis), yet their spans agree near 1, far above isotropic chance r/d."""
    pytest.importorskip("sae_lens")
    from saesim.saes.loading import decoder_rows
    from saesim.saes.training import SAESpec, train_sae

    d, r = 32, 8
    store = tmp_path / "block.h5"
    clean, block = _planted_block_store(store, rng, d=d, r=r)
    saes = []
    for s in (0, 1, 2):
        spec = SAESpec("topk", 32, 6, s, s, lr=1e-2, training_samples=200_000, batch_size=256, eval_rows=4096)
        train_sae(store, spec, tmp_path / f"sae{s}")
        saes.append(dict(hook="h", variant="v", seed=s, role="real", path=str(tmp_path / f"sae{s}"), store=str(store),
                         spec=spec.to_dict(), identity={"seeds": [s]}, out=str(tmp_path / f"pl{s}.h5")))
    variants, _, pair_rows, _, _ = pl.run_experiment(saes, {"null_quantile": 0.99, "subspace_fraction": 0.25, "threshold": 0.9}, 256)
    for s in (0, 1, 2):
        arrays, _ = pl.read_per_latent_h5(tmp_path / f"pl{s}.h5")
        dec = normalize_rows(decoder_rows(tmp_path / f"sae{s}"))
        to_clean = np.abs(dec @ clean.T)
        recovers = to_clean.max(1) >= 0.9
        # the clean features: one latent each, in every seed, and they reappear in every other seed
        assert recovers.sum() == len(clean) and set(to_clean[recovers].argmax(1)) == set(range(len(clean)))
        assert arrays["stable"][recovers].all()
        # the block's latents (live, their decoder row inside the block): many, and unstable
        in_block = (np.linalg.norm(dec @ block, axis=1) >= 0.9) & (arrays["frequency"] > 0)
        assert in_block.sum() >= r
        assert arrays["stable"][in_block].mean() < 0.2 and arrays["reappear_t"][in_block].mean() < 0.2
    for p in pair_rows:
        assert p["subspace_rank"] == r
        assert p["unstable_subspace_chance"] == pytest.approx(r / d)  # isotropic chance
        assert p["unstable_subspace"] > 0.9  # the same block, cut into different bases
    v = variants[0]
    assert v["frac_stable"] == pytest.approx(len(clean) / 32, abs=0.05)
    assert v["unstable_subspace_lo"] > 0.9 and v["unstable_subspace_chance"] == pytest.approx(r / d)
