"""Convergence: snapshots during training that leave the training run as it was."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from saesim.config import convergence_target, validate_config
from saesim.errors import SaesimError
from saesim.synthetic import write_synthetic_store

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_convergence_is_on_for_language_models_by_default_and_where_a_block_asks():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = validate_config(raw, SCHEMA)
    targets = {name: convergence_target(exp) for name, exp in cfg["experiments"].items()}
    assert targets["smollm2"] == ("topk-w1152-k64", "blocks.6.hook_out", [0.1, 0.25, 0.5, 1.0])
    assert targets["toy"] is None and targets["modular"] is None
    raw = copy.deepcopy(raw)
    raw["experiments"]["toy"]["convergence"] = {"variant": "batchtopk-w50-k24", "fractions": [0.5, 0.2]}
    raw["experiments"]["smollm2"]["convergence"] = {"enabled": False}
    cfg = validate_config(raw, SCHEMA)
    assert convergence_target(cfg["experiments"]["toy"]) == ("batchtopk-w50-k24", "toy", [0.2, 0.5, 1.0])
    assert convergence_target(cfg["experiments"]["smollm2"]) is None


@pytest.mark.parametrize(
    "block,message",
    [
        ({"variant": "topk-w9-k1"}, r"experiments\.smollm2\.convergence\.variant: 'topk-w9-k1' is not a variant"),
        ({"variant": "topk-w2304-k64", "hook": "blocks.15.hook_out"}, r"convergence\.hook: 'blocks\.15\.hook_out' is not a hook topk-w2304-k64 is trained at; hooks: blocks\.6\.hook_out$"),
        ({"fractions": [0]}, r"experiments\.smollm2\.convergence\.fractions\[0\]: 0 is less than or equal to the minimum of 0"),
        ({"every": 2}, r"experiments\.smollm2\.convergence: unknown key\(s\) every"),
    ],
)
def test_bad_convergence_blocks_are_refused_with_one_line(block, message):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["experiments"]["smollm2"]["convergence"] = block
    with pytest.raises(SaesimError, match=message):
        validate_config(raw, SCHEMA)


pytest.importorskip("sae_lens")

from saesim.convergence import convergence_table, measure_convergence, train_with_snapshots, weights_equal  # noqa: E402
from saesim.training import SAESpec, train_sae  # noqa: E402


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2},
             "std_firing_magnitudes": 0.15, "orthogonalization": {"num_steps": 300, "lr": 0.05}, "bias": False, "seed": 0}
    write_synthetic_store(path, model, 12_000, chunk_rows=2048, progress=False)
    return path


def spec(seed, arch="topk"):
    return SAESpec(arch, 12, 3, seed, seed, lr=1e-2, training_samples=10_000, batch_size=256, eval_rows=2000)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_final_snapshot_is_the_plain_run_and_the_half_snapshot_differs(toy_store, tmp_path, arch):
    from safetensors.numpy import load_file

    plain = train_sae(toy_store, spec(3, arch), tmp_path / "plain")
    snaps, metrics = train_with_snapshots(toy_store, spec(3, arch), tmp_path / "snap", [0.5, 1.0])
    # the snapshotting run publishes the same bytes as a plain run
    assert metrics["weights_sha256"] == plain["weights_sha256"]
    assert sorted(snaps) == [0.5, 1.0]
    # 40 steps of 256: the 0.5 snapshot is taken after step 20 (5,120 samples), 1.0 after the last
    assert [snaps[f][0] for f in (0.5, 1.0)] == [5120, 10240]
    final = load_file(str(snaps[1.0][1] / "sae_weights.safetensors"))
    published = load_file(str(tmp_path / "plain" / "sae_weights.safetensors"))
    assert final["W_dec"].tobytes() == published["W_dec"].tobytes()
    assert weights_equal(snaps[1.0][1], tmp_path / "plain")
    half = load_file(str(snaps[0.5][1] / "sae_weights.safetensors"))
    assert not np.array_equal(half["W_dec"], final["W_dec"])
    assert not weights_equal(snaps[0.5][1], tmp_path / "plain")


def test_measure_convergence_checks_against_published_and_reports_every_pair(toy_store, tmp_path):
    published = {s: tmp_path / f"pub{s}" for s in (0, 1, 2)}
    for s, d in published.items():
        train_sae(toy_store, spec(s), d)
    # seed 2's "published" SAE is really another seed's: the check must say so
    wrong = dict(published)
    wrong[2] = published[0]
    baseline = {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0}}
    res = measure_convergence(toy_store, {s: spec(s) for s in (0, 1, 2)}, [0.5], tmp_path / "work", published=wrong, baseline=baseline)
    assert res["fractions"] == [0.5, 1.0]  # 1.0 always added
    assert [c["final_equals_published"] for c in res["checks"]] == [True, True, False]
    assert res["final_equals_published"] is False and res["final_equals_run"] is True
    assert not (tmp_path / "work").exists()
    assert len(res["per_pair"]) == 2 * 3 and len(res["per_seed"]) == 2 * 3
    table = convergence_table(res, experiment="toy")
    assert list(table["fraction"]) == [0.5, 1.0] and (table["n_pairs"] == 3).all()
    assert (table["mmcs_baseline"] == 0.3).all()
    # the 1.0 row is the published SAEs: same EV as their metrics.json, same pair similarity
    import json

    from saesim.checkpoints import load_sae_weights
    from saesim.similarity import compare_decoders

    evs = [json.loads((published[s] / "metrics.json").read_text())["explained_variance"] for s in (0, 1, 2)]
    assert table.iloc[1]["explained_variance_mean"] == pytest.approx(np.mean(evs), rel=1e-6)
    ref = compare_decoders(load_sae_weights(published[0]).W_dec, load_sae_weights(published[1]).W_dec, with_baseline=False)
    pair01 = [p for p in res["per_pair"] if p["fraction"] == 1.0 and (p["seed_a"], p["seed_b"]) == (0, 1)][0]
    assert pair01["mmcs"] == pytest.approx(ref["mmcs"], abs=1e-7)
    assert all(0 <= p["mmcs"] <= 1 for p in res["per_pair"])


def test_bad_snapshot_requests_are_refused(toy_store, tmp_path):
    with pytest.raises(SaesimError, match=r"fractions must lie in \(0, 1\]"):
        train_sae(toy_store, spec(0), tmp_path / "x", snapshot_fractions=[0.0, 1.0], on_snapshot=lambda *a: None)
    with pytest.raises(SaesimError, match="no resume_dir"):
        train_sae(toy_store, spec(0), tmp_path / "x", snapshot_fractions=[1.0], on_snapshot=lambda *a: None, resume_dir=tmp_path / "r")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_convergence_rule_on_a_toy_experiment(tmp_path):
    """The workflow's convergence job on the small toy config with a convergence block: the
    figure and table are made, the final snapshots equal the published SAEs bit for bit, and
    the 1.0 row repeats the published SAEs' numbers."""
    import copy
    import json
    import subprocess
    import sys

    import pandas as pd
    from workflow_helpers import SMALL, copy_workflow

    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["convergence"] = {"fractions": [0.5]}
    w = copy_workflow(tmp_path / "wf", cfg)
    target = "results/figures/toy_convergence.pdf"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target], cwd=w, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (w / target).stat().st_size > 1000 and (w / "results/figures/toy_convergence.png").stat().st_size > 1000
    res = json.loads((w / "results/toy/convergence.json").read_text())
    assert res["final_equals_published"] is True and res["variant"] == "topk-w12-k2" and res["hook"] == "toy"
    table = pd.read_csv(w / "results/toy/tables/convergence.csv")
    assert list(table["fraction"]) == [0.5, 1.0] and list(table["samples"]) == [6144, 12032]  # 24 and 47 steps of 256
    final = table.iloc[-1]
    metrics = [json.loads((w / f"results/toy/saes/toy/topk-w12-k2/seed{s}/metrics.json").read_text()) for s in (0, 1)]
    assert final["explained_variance_mean"] == pytest.approx(np.mean([m["explained_variance"] for m in metrics]), rel=1e-5)
    base = json.loads((w / "results/toy/baselines/toy/w12.json").read_text())
    assert final["mmcs_baseline"] == pytest.approx(base["mmcs"], rel=1e-5)
    # the published SAEs were not retrained for it, and a second run starts no job
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", target], cwd=w, capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr
