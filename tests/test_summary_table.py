"""The cross-experiment summary table (results/summary.{csv,md,html}) from known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from saesim.report.tables import SUMMARY_COLUMNS, cross_experiment_summary, cross_summary_html, cross_summary_markdown


def _stability(variants, ground_truth: bool) -> pd.DataFrame:
    rows = []
    for i, (hook, variant) in enumerate(variants):
        arch, width, sp = variant.split("-")
        row = {
            "hook": hook, "variant": variant, "architecture": arch, "width": int(width[1:]),
            "sparsity_key": "k", "sparsity": float(sp[1:]), "n_seeds": 3, "n_pairs": 3,
            "l0_mean": float(sp[1:]), "explained_variance_mean": 0.9, "dead_fraction_mean": 0.1 * i,
        }
        for metric, value, base in (("mmcs", 0.8, 0.4), ("hungarian_mean_cos", 0.6, 0.2), ("frac_matched_0.7", 0.5, 0.0)):
            row.update({f"{metric}_mean": value, f"{metric}_std": 0.01, f"{metric}_min": value - 0.01,
                        f"{metric}_max": value + 0.01, f"{metric}_baseline": base, f"{metric}_ratio": value / base if base else np.nan})
        if ground_truth:
            row.update({"gt_mean_max_cos_mean": 0.95, "gt_mean_max_cos_baseline": 0.3,
                        "gt_frac_recovered_mean": 0.8, "gt_frac_recovered_baseline": 0.0})
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def summary():
    stability = {
        "toy": _stability([("toy", "topk-w50-k4"), ("toy", "topk-w50-k8")], ground_truth=True),
        "modular": _stability([("hook_a", "topk-w512-k16"), ("hook_b", "topk-w512-k16")], ground_truth=False),
        "lm": _stability([("blocks.6.hook_out", "topk-w1152-k64")], ground_truth=False),
    }
    fourier = {
        "modular": pd.DataFrame({
            "hook": ["hook_a", "hook_a", "hook_b", "hook_b"],
            "variant": ["topk-w512-k16"] * 4,
            "seed": [0, 1, 0, 1],
            "act_mean_overlap": [0.5, 0.7, 0.2, 0.2],
            "act_random_baseline": [0.1, 0.1, 0.1, 0.1],
        })
    }
    return cross_experiment_summary(stability, fourier, kinds={"toy": "toy", "modular": "modular", "lm": "smollm2"})


def test_every_variant_of_every_experiment_with_baselines(summary):
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 5
    assert list(summary["experiment"]) == ["toy", "toy", "modular", "modular", "lm"]
    assert summary["mmcs_baseline"].eq(0.4).all() and summary["mmcs_ratio"].eq(2.0).all()
    assert np.allclose(summary["hungarian_mean_cos_ratio"], 3.0)


def test_ground_truth_only_where_known(summary):
    toy = summary[summary["experiment"] == "toy"]
    assert toy["gt_mean_max_cos"].eq(0.95).all() and toy["fourier_overlap"].isna().all()
    mod = summary[summary["experiment"] == "modular"].set_index("hook")
    assert mod.loc["hook_a", "fourier_overlap"] == pytest.approx(0.6)  # mean over seeds
    assert mod.loc["hook_a", "fourier_overlap_ratio"] == pytest.approx(6.0)
    assert mod.loc["hook_b", "fourier_overlap_ratio"] == pytest.approx(2.0)
    assert mod["gt_mean_max_cos"].isna().all()
    lm = summary[summary["experiment"] == "lm"]
    assert lm[["gt_mean_max_cos", "fourier_overlap"]].isna().all().all()


def test_markdown_and_html(summary):
    md = cross_summary_markdown(summary)
    header = next(line for line in md.splitlines() if line.startswith("| experiment"))
    # escaped pipes: the header has exactly one column per display column
    assert header.replace("\\|", "").count("|") == 13
    assert "0.800 (0.400, 2.0×)" in md
    assert "Fourier overlap 0.600 (0.100, 6.0×)" in md
    assert "recovered 0.80 (0.00)" in md
    html = cross_summary_html(summary)
    assert html.startswith("<!DOCTYPE html>") and html.count("<tr") == 6


# --------------------------------------------------------------------------- the trained null


def _write(path, obj):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def _pair(mmcs, hung):
    return {"mmcs": mmcs, "hungarian_mean_cos": hung, "frac_matched_above": {"0.7": mmcs / 2}, "mmcs_a_to_b": mmcs, "mmcs_b_to_a": mmcs}


REAL_PAIRS = {(0, 1): (0.9, 0.8), (0, 2): (0.8, 0.7), (1, 2): (0.7, 0.6)}
NULL_PAIRS = {(0, 1): (0.5, 0.3), (0, 2): (0.6, 0.4), (1, 2): (0.7, 0.5)}


def _tables(tmp_path, real_pairs, null_pairs):
    """Real and null SAEs of one variant (the seeds of their pairs) with known (mmcs, Hungarian) per pair."""
    from saesim.report.tables import load_baselines, pair_table, sae_table, stability_table

    res = tmp_path / "results" / "toy"
    saes, pairs = [], []
    for null, values, ev in ((False, real_pairs, [0.9, 0.92, 0.94]), (True, null_pairs, [0.5, 0.6, 0.7])):
        root = res / "null" if null else res
        for seed in sorted({s for pair in values for s in pair}):
            d = root / f"saes/toy/topk-w8-k3/seed{seed}"
            _write(d / "metrics.json", {"architecture": "topk", "width": 8, "sparsity_key": "k", "sparsity": 3, "l0": 3.0 + null,
                                        "explained_variance": ev[seed], "mse": 0.1, "dead_fraction": 0.0, "training_seconds": 1.0})
            saes.append(str(d))
        for (a, b), (m, h) in values.items():
            pairs.append(_write(root / f"pairs/toy/topk-w8-k3/seed{a}-seed{b}.json", _pair(m, h)))
    base = _write(res / "baselines/toy/w8.json", {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0}})
    sae_df = sae_table(saes)
    pair_df = pair_table(pairs, sae_df)
    return sae_df, pair_df, stability_table(sae_df, pair_df, load_baselines([base]))


@pytest.fixture
def tables_with_null(tmp_path):
    """Real SAEs (seeds 0-2) and null SAEs (seeds 0-2) of one variant, with known numbers."""
    return _tables(tmp_path, REAL_PAIRS, NULL_PAIRS)


def test_null_columns_are_means_over_null_pairs_with_excess(tables_with_null):
    saes, pairs, st = tables_with_null
    assert saes["null"].sum() == 3 and pairs["null"].sum() == 3
    row = st.iloc[0]
    assert len(st) == 1 and row["n_pairs"] == 3 and row["n_null_pairs"] == 3 and row["n_null_seeds"] == 3
    # the real numbers are the real pairs' alone
    assert row["mmcs_mean"] == pytest.approx(0.8) and row["explained_variance_mean"] == pytest.approx(0.92)
    assert row["mmcs_null"] == pytest.approx(0.6)
    assert row["mmcs_null_std"] == pytest.approx(np.std([0.5, 0.6, 0.7]))
    assert row["mmcs_excess"] == pytest.approx((0.8 - 0.6) / (1 - 0.6))
    assert row["hungarian_mean_cos_null"] == pytest.approx(0.4)
    assert row["hungarian_mean_cos_excess"] == pytest.approx((0.7 - 0.4) / 0.6)
    assert row["explained_variance_null"] == pytest.approx(0.6)
    assert row["explained_variance_excess"] == pytest.approx((0.92 - 0.6) / 0.4)
    assert row["l0_null"] == pytest.approx(4.0)
    # the random baseline is still there, unchanged
    assert row["mmcs_baseline"] == 0.3 and row["mmcs_ratio"] == pytest.approx(0.8 / 0.3)


def test_summary_carries_the_null_and_shows_it(tables_with_null):
    _, _, st = tables_with_null
    fourier = pd.DataFrame({
        "hook": ["toy"] * 4, "variant": ["topk-w8-k3"] * 4, "seed": [0, 1, 0, 1], "null": [False, False, True, True],
        "act_mean_overlap": [0.8, 0.9, 0.5, 0.7], "act_random_baseline": [0.2] * 4,
    })
    summary = cross_experiment_summary({"toy": st, "modular": st}, {"modular": fourier}, kinds={"toy": "toy", "modular": "modular"})
    assert list(summary.columns) == SUMMARY_COLUMNS
    for col in ("mmcs_null", "mmcs_excess", "hungarian_mean_cos_null", "hungarian_mean_cos_excess", "explained_variance_null"):
        assert summary[col].notna().all(), col
    mod = summary[summary["experiment"] == "modular"].iloc[0]
    assert mod["fourier_overlap"] == pytest.approx(0.85)  # the real SAEs only
    assert mod["fourier_overlap_null"] == pytest.approx(0.6) and mod["fourier_overlap_null_std"] == pytest.approx(0.1)
    assert mod["fourier_overlap_excess"] == pytest.approx((0.85 - 0.6) / 0.4)
    assert np.isnan(summary[summary["experiment"] == "toy"].iloc[0]["fourier_overlap_null"])
    md = cross_summary_markdown(summary)
    assert "0.600 [0.352, 0.848] ± 0.082 (excess +0.50)" in md  # mmcs: null mean [interval] ± s.d. over null pairs, excess
    assert "null 0.600 ± 0.100 (excess +0.6" in md  # Fourier overlap: excess 0.625


def test_fourier_table_marks_null_sae_rows(tmp_path):
    from saesim.report.tables import fourier_table

    def result(overlap):
        space = {"dim": 4, "mean_overlap": overlap, "frac_above_0.5": 1.0, "random_baseline": 0.25}
        return {"key_frequencies": [3, 7], "activation_subspace": space, "embedding_subspace": space}

    files = [
        _write(tmp_path / "results/modular/fourier/hook_a/topk-w8-k3/seed0.json", result(0.8)),
        _write(tmp_path / "results/modular/null/fourier/hook_a/topk-w8-k3/seed0.json", result(0.5)),
        _write(tmp_path / "results/modular/null/fourier/hook_a/topk-w8-k3/seed1.json", result(0.7)),
    ]
    table = fourier_table(files)
    assert list(table["null"]) == [False, True, True]
    assert list(table["act_mean_overlap"]) == [0.8, 0.5, 0.7]


# --------------------------------------------------------------------------- intervals over seed pairs

T_975_2 = 4.302652729911275  # scipy.stats.t.ppf(0.975, 2)


def test_decoder_metrics_get_the_t_interval_over_seed_pairs(tables_with_null):
    """Three real pairs (mmcs 0.9, 0.8, 0.7) and three null pairs (0.5, 0.6, 0.7): the textbook
    interval mean +- t_{0.975,2} sd / sqrt(3), clipped to [0, 1], for every table metric in every
    coordinate space; the two intervals overlap, so the excess is not distinguishable from zero."""
    from saesim.registry.metrics import INTERVAL_STATS, TABLE_METRICS, space_columns

    _, _, st = tables_with_null
    row = st.iloc[0]
    half = T_975_2 * 0.1 / np.sqrt(3)  # sd of (0.9, 0.8, 0.7) and of (0.5, 0.6, 0.7) is 0.1
    assert row["mmcs_lo"] == pytest.approx(0.8 - half) and row["mmcs_hi"] == 1.0  # 1.048 clipped
    assert row["mmcs_null_lo"] == pytest.approx(0.6 - half) and row["mmcs_null_hi"] == pytest.approx(0.6 + half)
    assert row["mmcs_excess_distinct"] == 0.0
    assert row["hungarian_mean_cos_lo"] == pytest.approx(0.7 - half) and row["hungarian_mean_cos_hi"] == pytest.approx(0.7 + half)
    assert row["frac_matched_0.7_lo"] == pytest.approx(0.4 - half / 2)  # mmcs / 2 per pair
    # every table metric has the columns; the coordinate spaces too (empty: these pairs have none)
    for m in TABLE_METRICS:
        assert all(f"{m}_{s}" in st for s in INTERVAL_STATS), m
    for col in (c for c in space_columns() if c.endswith("_lo")):
        assert col in st and np.isnan(row[col])


def test_planted_separation_from_the_null_is_distinct_and_shown(tmp_path):
    """Real pairs at 0.90-0.92 against one null pair at 0.5 (two null seeds: no null interval, its
    mean is a point): distinct (1), marked * in summary.md; Hungarian real pairs spread over the
    null's point: 0."""
    real = {(0, 1): (0.90, 0.2), (0, 2): (0.91, 0.5), (1, 2): (0.92, 0.8)}
    _, _, st = _tables(tmp_path, real, {(0, 1): (0.5, 0.5)})
    row = st.iloc[0]
    assert row["n_pairs"] == 3 and row["n_null_pairs"] == 1
    assert row["mmcs_lo"] == pytest.approx(0.91 - T_975_2 * 0.01 / np.sqrt(3))
    assert np.isnan(row["mmcs_null_lo"]) and np.isnan(row["mmcs_null_hi"])
    assert row["mmcs_excess_distinct"] == 1.0
    assert row["hungarian_mean_cos_excess_distinct"] == 0.0
    summary = cross_experiment_summary({"toy": st}, kinds={"toy": "toy"})
    assert list(summary.columns) == SUMMARY_COLUMNS
    s = summary.iloc[0]
    assert s["mmcs_lo"] == row["mmcs_lo"] and s["mmcs_excess_distinct"] == 1.0 and s["hungarian_mean_cos_excess_distinct"] == 0.0
    md = cross_summary_markdown(summary)
    assert f"0.910 [{row['mmcs_lo']:.3f}, {row['mmcs_hi']:.3f}]* (0.300, 3.0×)" in md
    assert f"0.500 [{row['hungarian_mean_cos_lo']:.3f}, {row['hungarian_mean_cos_hi']:.3f}] (0.200, 2.5×)" in md
    assert "[95% CI]" in cross_summary_html(summary)


def test_fewer_than_three_pairs_leave_the_interval_empty(tmp_path):
    _, _, st = _tables(tmp_path, {(0, 1): (0.9, 0.8)}, {(0, 1): (0.5, 0.3)})
    row = st.iloc[0]
    assert all(np.isnan(row[f"mmcs_{s}"]) for s in ("lo", "hi", "null_lo", "null_hi", "excess_distinct"))
    md = cross_summary_markdown(cross_experiment_summary({"toy": st}))
    assert "0.900 (0.300, 3.0×)" in md  # no brackets, no mark
