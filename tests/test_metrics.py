"""The metric registries (saesim.registry.metrics): they agree with what saesim.similarity computes and
with the relational measures, and a newly registered metric appears in every table, the
summary and the ``saesim compare`` table (and is gone again once unregistered)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saesim.registry import metrics
from saesim.errors import SaesimError
from saesim.workflow.layout import ArtifactId
from saesim.registry.metrics import DECODER_METRICS, RELATIONAL_MEASURES, TABLE_METRICS, DecoderMetric, TableMetric


def test_decoder_metrics_are_what_compare_decoders_returns():
    from saesim.similarity import NULL_METRICS, SCALAR_METRICS, compare_decoders

    assert set(DECODER_METRICS) == set(NULL_METRICS)
    assert {m.name for m in DECODER_METRICS.values() if not m.thresholded} == set(SCALAR_METRICS)
    rng = np.random.default_rng(0)
    res = compare_decoders(rng.standard_normal((12, 6)), rng.standard_normal((12, 6)),
                           rng.standard_normal((6, 12)), rng.standard_normal((6, 12)), with_baseline=True, baseline_draws=1)
    for m in DECODER_METRICS.values():
        assert isinstance(res[m.name], dict) == m.thresholded, m.name
        assert m.name in res["baseline"], m.name
    # the baseline rule of each metric is how random_decoder_baseline got it
    rules = {"closed_form": {"closed_form"}, "matching": {"empirical", "transferred"}, "shared": {"bound", "empirical"}}
    for m in DECODER_METRICS.values():
        assert res["baseline"]["method"][m.name] in rules[m.baseline], m.name
    assert set(rules) == set(metrics.BASELINE_RULES)


def test_table_metrics_read_their_decoder_metric():
    pair = {"mmcs": 0.8, "hungarian_mean_cos": 0.7, "frac_matched_above": {"0.5": 0.9, "0.7": 0.4}}
    assert {name: m.value(pair) for name, m in TABLE_METRICS.items()} == {"mmcs": 0.8, "hungarian_mean_cos": 0.7, "frac_matched_0.7": 0.4}
    from saesim.report.tables import baseline_std, baseline_value

    assert list(TABLE_METRICS) == ["mmcs", "hungarian_mean_cos", "frac_matched_0.7"]
    assert TABLE_METRICS["mmcs"].label == "mean max |cos| (PWMCC)"
    base = {"mmcs": {"mean": 0.3, "std": 0.0}, "frac_matched_above": {"0.7": 0.05}, "std": {"frac_matched_above": {"0.7": 0.01}}}
    assert baseline_value(base, "mmcs") == 0.3 and baseline_value(base, "frac_matched_0.7") == 0.05
    assert baseline_std(base, "frac_matched_0.7") == 0.01 and np.isnan(baseline_std(base, "mmcs"))
    with pytest.raises(SaesimError, match=r"^unknown stability metric 'pwmcc'; known: mmcs, hungarian_mean_cos, frac_matched_0.7$"):
        baseline_value(base, "pwmcc")


def test_relational_measures_are_the_registry():
    from saesim.report.figures import MEASURE_LABELS
    from saesim.similarity.universality.relational import METRICS

    assert tuple(RELATIONAL_MEASURES) == METRICS
    assert MEASURE_LABELS == {"svcca": "SVCCA", "rsa": "RSA (Spearman)", "mutual_knn": "mutual kNN (Jaccard)", "cka": "linear CKA"}


def test_bad_registrations_are_one_line_errors():
    with pytest.raises(SaesimError, match="registered twice"):
        metrics.register(TABLE_METRICS["mmcs"])
    with pytest.raises(SaesimError, match=r"'pwmcc' is not a decoder metric"):
        metrics.register(TableMetric("x", "pwmcc", "x", "x", "#000000"))
    with pytest.raises(SaesimError, match="frac_matched_above needs threshold"):
        metrics.register(TableMetric("x", "frac_matched_above", "x", "x", "#000000"))
    with pytest.raises(SaesimError, match="baseline must be one of"):
        DecoderMetric("x", "x", "drawn")


# ---- a new metric, end to end ----------------------------------------------------------------

NEW = TableMetric("frac_matched_0.5", "frac_matched_above", "fraction matched at |cos| >= 0.5", "matched >= 0.5", "#000000",
                  threshold="0.5", markdown=("mean", "ratio"), summary="matched >= 0.5")


@pytest.fixture
def new_metric():
    metrics.register(NEW)
    yield NEW
    metrics.unregister(NEW)
    assert NEW.name not in TABLE_METRICS


def _write(path: Path, obj) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def _tables(tmp_path, sae_extra=lambda role, seed: {}):
    """saes, pairs and stability of one variant: two real seeds, two null seeds (known values);
    ``sae_extra(role, seed)``: more keys of each SAE's metrics.json."""
    from saesim.report.tables import load_baselines, pair_table, sae_table, stability_table

    info = {"architecture": "topk", "width": 8, "sparsity_key": "k", "sparsity": 3, "l0": 3.0,
            "explained_variance": 0.9, "mse": 0.1, "dead_fraction": 0.0, "training_seconds": 1.0}
    saes, pairs = [], []
    for role, seeds, f5 in (("real", (0, 1), 0.75), ("null", (2, 3), 0.5)):
        for s in seeds:
            saes.append(str(Path(_write(tmp_path / role / f"sae{s}/metrics.json",
                                        {**info, **sae_extra(role, s),
                                         "identity": ArtifactId("toy", "toy", "topk-w8-k3", (s,), role).to_dict()})).parent))
        pair = {"mmcs": 0.8, "hungarian_mean_cos": 0.7, "frac_matched_above": {"0.5": f5, "0.7": 0.4},
                "mmcs_a_to_b": 0.8, "mmcs_b_to_a": 0.8, "identity": ArtifactId("toy", "toy", "topk-w8-k3", seeds, role).to_dict()}
        pairs.append(_write(tmp_path / role / "pair.json", pair))
    base = {"mmcs": 0.4, "hungarian_mean_cos": 0.35, "frac_matched_above": {"0.5": 0.25, "0.7": 0.1}, "n_a": 8, "n_b": 8,
            "identity": ArtifactId("toy", "toy").to_dict()}
    saes_t = sae_table(saes)
    pairs_t = pair_table(pairs, saes_t)
    return saes_t, pairs_t, stability_table(saes_t, pairs_t, load_baselines([_write(tmp_path / "base.json", base)]))


def test_a_registered_table_metric_gets_columns_everywhere(tmp_path, new_metric):
    from saesim.report.tables import cross_experiment_summary, cross_summary_markdown, summary_columns, summary_markdown

    _, pairs, st = _tables(tmp_path)
    assert pairs.loc[~pairs["null"], "frac_matched_0.5"].tolist() == [0.75]
    row = st.iloc[0]
    assert row["frac_matched_0.5_mean"] == 0.75 and row["frac_matched_0.5_baseline"] == 0.25
    assert row["frac_matched_0.5_ratio"] == 3.0 and row["frac_matched_0.5_null"] == 0.5 and row["frac_matched_0.5_excess"] == 0.5
    assert list(st.columns).index("frac_matched_0.5_mean") > list(st.columns).index("frac_matched_0.7_ratio")
    md = summary_markdown(st)
    header = [h.strip() for h in md.splitlines()[-3].split("|")]
    assert {"matched >= 0.5", "matched >= 0.5 / random", "matched >= 0.5 null", "matched >= 0.5 excess"} <= set(header)
    assert "matched >= 0.5 random" not in header  # markdown=("mean", "ratio")
    summary = cross_experiment_summary({"toy": st}, kinds={"toy": "toy"})
    new_cols = ["frac_matched_0.5", "frac_matched_0.5_std", "frac_matched_0.5_baseline", "frac_matched_0.5_ratio",
                "frac_matched_0.5_null", "frac_matched_0.5_null_std", "frac_matched_0.5_excess",
                "frac_matched_0.5_randmodel", "frac_matched_0.5_randmodel_std", "frac_matched_0.5_excess_randmodel"]
    assert list(summary.columns) == summary_columns()
    at = summary_columns().index("frac_matched_0.5")
    assert summary_columns()[at:at + 10] == new_cols and summary_columns()[at - 1] == "hungarian_mean_cos_excess_distinct"
    # one null pair: no s.d.; no random-weights model here: NaN
    np.testing.assert_allclose(summary[new_cols].iloc[0].to_numpy(float), [0.75, 0.0, 0.25, 3.0, 0.5, np.nan, 0.5, np.nan, np.nan, np.nan])
    text = cross_summary_markdown(summary)
    assert "matched >= 0.5 [95% CI] (random, ratio)" in text and "0.750 (0.250, 3.0×)" in text and "matched >= 0.5 null (excess)" in text


def test_without_the_new_metric_the_tables_are_as_before(tmp_path):
    from saesim.report.tables import SUMMARY_COLUMNS, cross_experiment_summary, summary_columns

    _, pairs, st = _tables(tmp_path)
    assert "frac_matched_0.5" not in pairs and not any(c.startswith("frac_matched_0.5") for c in st)
    assert summary_columns() == SUMMARY_COLUMNS
    assert list(cross_experiment_summary({"toy": st}).columns) == SUMMARY_COLUMNS


# ---- a new SAE-level measure, end to end ----------------------------------------------------

NEW_MEASURE = metrics.SaeMeasure("sharpness", "a made-up number per SAE", "sae", stats=("mean", "std"), null=metrics.NULL_STATS,
                                 summary=("", *metrics.NULL_STATS), markdown=(("mean", "sharp"),), display=("sharp", ".2f"))
SHARPNESS = {("real", 0): 0.6, ("real", 1): 0.8, ("null", 2): 0.2, ("null", 3): 0.4}


@pytest.fixture
def new_measure():
    metrics.register(NEW_MEASURE)
    yield NEW_MEASURE
    metrics.unregister(NEW_MEASURE)
    assert NEW_MEASURE.name not in metrics.SAE_MEASURES and all(m is not NEW_MEASURE for m, _ in metrics.SUMMARY_PARTS)


def test_a_registered_sae_measure_gets_columns_everywhere(tmp_path, new_measure):
    """Registering an SAE measure (no edit of saesim.report.tables) gives it its column in saes.csv, its
    statistics and null companions in stability.csv and the summary, and its headers."""
    from saesim.report.tables import (cross_experiment_summary, cross_summary_html, cross_summary_markdown, summary_columns,
                               summary_display, summary_markdown)

    saes, _, st = _tables(tmp_path, lambda role, seed: {"sharpness": SHARPNESS[role, seed]})
    assert sorted(saes["sharpness"]) == [0.2, 0.4, 0.6, 0.8]
    row = st.iloc[0]
    np.testing.assert_allclose([row[f"sharpness_{s}"] for s in ("mean", "std", "null", "null_std", "excess")],
                               [0.7, 0.1, 0.3, 0.1, 0.4 / 0.7])
    cols = list(st.columns)
    assert cols.index("dead_fraction_mean") < cols.index("sharpness_mean") < cols.index("n_pairs")  # an SAE-quality measure
    assert cols.index("explained_variance_excess") < cols.index("sharpness_null") < cols.index("mmcs_null")
    new_cols = ["sharpness", "sharpness_null", "sharpness_null_std", "sharpness_excess"]
    at = summary_columns().index("sharpness")
    assert summary_columns()[at - 1:at + 5] == ["dead_fraction", *new_cols, "mmcs"]
    summary = cross_experiment_summary({"toy": st}, kinds={"toy": "toy"})
    assert list(summary.columns) == summary_columns()
    np.testing.assert_allclose(summary[new_cols].iloc[0].to_numpy(float), [0.7, 0.3, 0.1, 0.4 / 0.7])
    assert "sharp" in [h.strip() for h in summary_markdown(st).splitlines()[-3].split("|")]
    display = summary_display(summary)
    assert list(display.columns)[3:5] == ["L0", "expl. var."] and display["sharp"].tolist() == ["0.70"]
    header = next(line for line in cross_summary_markdown(summary).splitlines() if line.startswith("| experiment"))
    assert "sharp" in [h.strip() for h in header.split("|")] and "<th>sharp</th>" in cross_summary_html(summary)


def test_bad_sae_measures_are_one_line_errors():
    with pytest.raises(SaesimError, match=r"^SAE measure x: source \['metrics'\] not among"):
        metrics.register(metrics.SaeMeasure("x", "x", "metrics"))
    with pytest.raises(SaesimError, match="'baseline' statistic needs baseline=True"):
        metrics.register(metrics.SaeMeasure("x", "x", "sae", stats=("mean", "baseline")))
    with pytest.raises(SaesimError, match="null statistics need the 'mean' statistic"):
        metrics.register(metrics.SaeMeasure("x", "x", "sae", stats=(), null=("null",)))
    with pytest.raises(SaesimError, match="'l0' is registered twice"):
        metrics.register(metrics.SaeMeasure("l0", "x", "sae"))
    with pytest.raises(SaesimError, match="'x' is not an SAE measure"):
        metrics.register(metrics.SummaryPart("x", summary=("null",)))
    assert "x" not in metrics.SAE_MEASURES


def test_a_registered_decoder_metric_gets_a_row_in_saesim_compare():
    from saesim.cli import format_table
    from saesim.similarity import compare_decoders

    rng = np.random.default_rng(1)
    res = compare_decoders(rng.standard_normal((10, 5)), rng.standard_normal((10, 5)), with_baseline=True, baseline_draws=1)
    res["dead_match_frac"], res["baseline"]["dead_match_frac"] = 0.5, 0.25
    new = metrics.register(DecoderMetric("dead_match_frac", "dead matches of {n_a}", "matching"))
    try:
        lines = format_table(res).splitlines()
    finally:
        metrics.unregister(new)
    rows = [line.split() for line in lines]
    at = rows.index(["dead", "matches", "of", "10", "0.5000", "0.2500", "2.0000"])  # label fields from the result
    assert rows[at - 1][:2] == ["shared", "latents"]  # in registration order, after the others
    assert "dead matches" not in format_table(res)
