"""The cross-experiment summary table (results/summary.{csv,md,html}) from known inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from saesim.tables import SUMMARY_COLUMNS, cross_experiment_summary, cross_summary_html, cross_summary_markdown


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
    assert header.replace("\\|", "").count("|") == 10
    assert "0.800 (0.400, 2.0×)" in md
    assert "Fourier overlap 0.600 (0.100, 6.0×)" in md
    assert "recovered 0.80 (0.00)" in md
    html = cross_summary_html(summary)
    assert html.startswith("<!DOCTYPE html>") and html.count("<tr") == 6
