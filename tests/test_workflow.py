"""The whole workflow on a tiny config, in a temporary copy of the repository.

Covers: a complete run, a second run that starts no job, what a config change
reruns, what a library edit reruns (and that an unrelated edit reruns nothing),
the bad-config message, and bad input stopping a job with one line naming the file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TINY, snakemake  # the session's tiny workflow run (workflow_copy) lives there


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    counts = {}
    for line in dry_run_output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def dry_run(workdir: Path) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job_counts(proc.stdout + proc.stderr)


def test_complete_run_produces_tables_and_figures(workflow_copy):
    w = workflow_copy
    for name in ("stability_vs_l0", "seed_heatmap", "recovery_vs_l0", "latent_vs_truth", "pwmcc_vs_gtmcc"):
        for ext in ("pdf", "png"):
            assert (w / f"results/figures/toy_{name}.{ext}").stat().st_size > 1000
    import pandas as pd

    st = pd.read_csv(w / "results/toy/tables/stability.csv")
    assert set(st["variant"]) == {"topk-w12-k2", "topk-w12-k4", "standard-w12-l1c0.05"}
    assert (st["n_pairs"] == 1).all()
    # every stability number has its baseline and ratio beside it
    for metric in ("mmcs", "hungarian_mean_cos", "frac_matched_0.7"):
        assert st[f"{metric}_baseline"].notna().all() and st[f"{metric}_ratio"].notna().all()
    assert st["mmcs_baseline"].between(0.2, 0.9).all()
    topk = st[st["architecture"] == "topk"].set_index("variant")
    assert topk.loc["topk-w12-k2", "l0_mean"] == pytest.approx(2, abs=0.05)
    # SAE checkpoints are in sae-lens format with metrics
    sae = w / "results/toy/saes/toy/topk-w12-k2/seed0"
    assert {p.name for p in sae.iterdir()} - {".snakemake_timestamp"} == {"cfg.json", "sae_weights.safetensors", "metrics.json"}
    assert "gt_mean_max_cos_mean" in st
    # the trained null beside every number: a Gaussian twin of the store, SAEs on it, their pair
    from saesim.stores.activation_store import open_store

    with open_store(w / "results/toy/stores/toy.h5") as real, open_store(w / "results/toy/null/stores/toy.h5") as null:
        assert (null.n_rows, null.d, null.activations.dtype) == (real.n_rows, real.d, real.activations.dtype)
        assert null.attrs["source_content_hash"] == real.content_hash
    assert (st["n_null_pairs"] == 1).all()
    for col in ("mmcs", "hungarian_mean_cos", "explained_variance", "gt_mean_max_cos"):
        assert st[f"{col}_null"].between(0, 1).all() and st[f"{col}_excess"].notna().all(), col
    summary = pd.read_csv(w / "results/summary.csv")
    for col in ("mmcs_null", "mmcs_excess", "hungarian_mean_cos_null", "hungarian_mean_cos_excess", "explained_variance_null"):
        assert summary[col].notna().all(), col
    # sae_lens.synthetic's metrics beside saesim's, with the store's measured true L0
    assert st["gt_mcc_mean"].between(0, 1).all() and st["gt_f1_mean"].between(0, 1).all()
    assert (st["gt_mcc_baseline"] < st["gt_mcc_mean"].max()).all()
    assert st["true_l0"].iloc[0] == pytest.approx(2.0, abs=0.15)  # linear 0.4 .. 0.1 over 8 features
    import json

    corr = json.loads((w / "results/toy/ground_truth/pwmcc_vs_gtmcc.json").read_text())
    assert corr["n_variants"] == 3 and -1 <= corr["pearson_r"] <= 1
    # logs exist for every job
    assert (w / "results/logs/train_saes/toy/toy/topk-w12-k2.log").read_text().strip()
    # every per-SAE and per-pair JSON records its identity (saesim.workflow.layout), the null's with role null
    def identity(p):
        return json.loads((w / "results/toy" / p).read_text())["identity"]

    sae = {"experiment": "toy", "hook": "toy", "variant": "topk-w12-k2"}
    assert identity("null/pairs/toy/topk-w12-k2/seed0-seed1.json") == {**sae, "seeds": [0, 1], "role": "null"}
    assert identity("pairs/toy/topk-w12-k2/seed0-seed1.json") == {**sae, "seeds": [0, 1], "role": "real"}
    assert identity("saes/toy/topk-w12-k2/seed1/metrics.json") == {**sae, "seeds": [1], "role": "real"}
    assert identity("null/saes/toy/topk-w12-k2/seed1/metrics.json") == {**sae, "seeds": [1], "role": "null"}
    assert identity("ground_truth/toy/topk-w12-k2/seed0.json") == {**sae, "seeds": [0], "role": "real"}
    assert identity("null/ground_truth/toy/topk-w12-k2/seed0.json") == {**sae, "seeds": [0], "role": "null"}
    assert identity("baselines/toy/w12.json") == {"experiment": "toy", "hook": "toy", "variant": None, "seeds": [], "role": "real"}


def test_second_run_starts_no_job(workflow_copy):
    assert dry_run(workflow_copy) == {}


@pytest.mark.slow
def test_moved_project_has_nothing_to_do(workflow_copy, tmp_path):
    """A finished project copied elsewhere (cp -a keeps mtimes) reruns nothing: no rule's
    params (its code hash included) holds an absolute path."""
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    subprocess.run(["cp", "-a", str(workflow_copy), str(moved)], check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=moved, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out, out[-3000:]


def test_library_edit_reruns_dependants_only(workflow_copy):
    w = workflow_copy
    plotting = w / "src/saesim/report/figures.py"
    original = plotting.read_text()
    plotting.write_text(original + "\n# an edit\n")
    try:
        counts = dry_run(w)
        assert set(counts) - {"all"} == {
            "plot_stability_vs_l0",
            "plot_recovery_vs_l0",
            "plot_seed_heatmap",
            "plot_latent_vs_truth",
            "coactivation",
            "plot_pwmcc_vs_gtmcc",
            "per_latent_toy",  # its figure; it feeds the summary
            "summary_table",
            "plot_coordinate_spaces",  # saesim.report.figures_geometry draws with saesim.report.figures
        }, counts
    finally:
        plotting.write_text(original)
    # an edit to a module no rule script imports (the CLI) reruns nothing
    unrelated = w / "src/saesim/cli.py"
    text = unrelated.read_text()
    unrelated.write_text(text + "\n# an unrelated edit\n")
    try:
        assert dry_run(w) == {}
    finally:
        unrelated.write_text(text)
    training = w / "src/saesim/saes/training.py"
    text = training.read_text()
    training.write_text(text + "\n# a training edit\n")
    try:
        counts = dry_run(w)
        assert counts["train_saes_toy"] == 3 and counts["compare_seed_pair"] == 3 and "make_toy_store" not in counts
        # the null store does not train: only the null SAEs rerun
        assert "make_null_store" not in counts and counts["train_null_saes_toy"] == 3 and counts["compare_null_seed_pair"] == 3
    finally:
        training.write_text(text)
    rows = w / "src/saesim/stores/rows.py"
    text = rows.read_text()
    rows.write_text(text + "\n# a row selection edit\n")
    try:
        counts = dry_run(w)
        assert counts["train_saes_toy"] == 3 and "make_toy_store" not in counts
        # the null store is fitted to the rows SAE training may use: it and the null SAEs rerun too
        assert counts["make_null_store"] == 1 and counts["train_null_saes_toy"] == 3 and counts["compare_null_seed_pair"] == 3
    finally:
        rows.write_text(text)


def test_changing_k_reruns_only_what_depends_on_it(workflow_copy):
    w = workflow_copy
    cfg = yaml.safe_load((w / "config.yaml").read_text())
    cfg["experiments"]["toy"]["sae"]["variants"][0]["k"] = [2, 5]
    (w / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        counts = dry_run(w)
    finally:
        (w / "config.yaml").write_text(yaml.safe_dump(TINY))
    assert counts.get("train_saes_toy") == 1  # k=5: one job trains its two seeds
    assert counts.get("compare_seed_pair") == 1
    assert counts.get("ground_truth_recovery") == 2
    assert "make_toy_store" not in counts and "decoder_baseline" not in counts
    assert "make_null_store" not in counts  # the null store follows its source store only
    assert counts.get("train_null_saes_toy") == 1 and counts.get("compare_null_seed_pair") == 1  # the null of k=5 (one job, both seeds)
    assert counts.get("stability_table") == 1


def test_adding_a_seed_reruns_each_variant_once(workflow_copy):
    w = workflow_copy
    cfg = yaml.safe_load((w / "config.yaml").read_text())
    cfg["experiments"]["toy"]["sae"]["seeds"] = [0, 1, 2]
    (w / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        counts = dry_run(w)
    finally:
        (w / "config.yaml").write_text(yaml.safe_dump(TINY))
    # one job per variant trains the new seed and restores the two it trained before from
    # results/.trained/ (tests/test_training.py: test_trained_cache_*); their SAEs are
    # republished, so each variant's three pairs are compared again
    assert counts.get("train_saes_toy") == 3
    assert counts.get("compare_seed_pair") == 9


def test_null_can_be_switched_off_and_its_seeds_chosen(workflow_copy):
    w = workflow_copy
    cfg = yaml.safe_load((w / "config.yaml").read_text())
    cfg["experiments"]["toy"]["null"] = {"enabled": False}
    (w / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        counts = dry_run(w)
        assert not {"make_null_store", "train_null_saes_toy", "compare_null_seed_pair"} & set(counts), counts
        assert counts.get("stability_table") == 1  # its null inputs are gone
        cfg["experiments"]["toy"]["null"] = {"seeds": [0, 1, 2]}
        (w / "config.yaml").write_text(yaml.safe_dump(cfg))
        counts = dry_run(w)
        # one job per variant trains null seed 2 and republishes seeds 0 and 1 (restored from
        # results/.trained), so all three pairs of each variant are compared again, as for real SAEs
        assert counts.get("train_null_saes_toy") == 3 and counts.get("compare_null_seed_pair") == 9, counts
        assert "train_saes_toy" not in counts and "make_null_store" not in counts
    finally:
        (w / "config.yaml").write_text(yaml.safe_dump(TINY))


def test_one_figure_alone(workflow_copy):
    w = workflow_copy
    target = w / "results/figures/toy_seed_heatmap.pdf"
    target.unlink()
    (w / "results/figures/toy_seed_heatmap.png").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "results/figures/toy_seed_heatmap.pdf"],
        cwd=w, capture_output=True, text=True, timeout=300,
    )
    assert job_counts(proc.stdout) == {"plot_seed_heatmap": 1}
    snakemake(w, "results/figures/toy_seed_heatmap.pdf")
    assert target.exists()


def test_bad_config_fails_before_any_job(workflow_copy, tmp_path):
    w = workflow_copy
    bad = tmp_path / "bad.yaml"
    cfg = json.loads(json.dumps(TINY))
    cfg["experiments"]["toy"]["sae"]["variants"][0]["k"] = [2, 12]
    bad.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile", str(bad)],
        cwd=w, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "experiments.toy.sae.variants[0].k: k=12 must be smaller than width=12" in out
    assert "Traceback" not in out


def test_nan_weights_stop_the_comparison_with_one_line(workflow_copy):
    from safetensors.numpy import load_file, save_file

    w = workflow_copy
    sae = w / "results/toy/saes/toy/standard-w12-l1c0.05/seed1"
    weights = sae / "sae_weights.safetensors"
    backup = weights.read_bytes()
    tensors = load_file(str(weights))
    tensors["W_dec"][0, 0] = np.nan
    save_file(tensors, str(weights))
    try:
        proc = snakemake(w, "results/toy/pairs/toy/standard-w12-l1c0.05/seed0-seed1.json", "--forcerun", "compare_seed_pair", check=False)
        assert proc.returncode != 0
        # the one terminal line (the job log, shown by show-failed-logs, repeats the message)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("saesim error in rule")]
        assert len(lines) == 1, proc.stderr[-3000:]
        assert "seed1" in lines[0] and "NaN" in lines[0] or "non-finite" in lines[0]
        assert not (w / "results/toy/pairs/toy/standard-w12-l1c0.05/seed0-seed1.json").exists()
    finally:
        weights.write_bytes(backup)


def test_one_training_job_per_experiment_gives_the_same_saes(workflow_copy, tmp_path):
    # sae.train_jobs: experiment trains every hook, variant and seed in one job (and the null in
    # another); the SAEs must be the bytes the per-variant jobs of the session's run wrote
    from workflow_helpers import copy_workflow

    cfg = json.loads(json.dumps(TINY))
    cfg["experiments"]["toy"]["sae"]["train_jobs"] = "experiment"
    w = copy_workflow(tmp_path / "wf", cfg)
    saes = sorted(p.relative_to(workflow_copy) for p in (workflow_copy / "results/toy/saes").glob("*/*/seed*"))
    nulls = sorted(p.relative_to(workflow_copy) for p in (workflow_copy / "results/toy/null/saes").glob("*/*/seed*"))
    assert len(saes) == 6 and len(nulls) == 6
    proc = snakemake(w, *map(str, saes + nulls))
    out = proc.stdout + proc.stderr
    assert out.count("rule train_saes_toy:") == 1 and out.count("rule train_null_saes_toy:") == 1
    for rel in saes + nulls:
        for name in ("sae_weights.safetensors", "cfg.json"):
            assert (w / rel / name).read_bytes() == (workflow_copy / rel / name).read_bytes(), rel / name
    assert "explained_variance" in (w / "results/logs/train_saes/toy.log").read_text()
