"""Convergence: snapshots kept by the training run (from the initialised SAE on), read
afterwards without training again."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from saesim.workflow.config import snapshot_target, validate_config
from saesim.errors import SaesimError
from saesim.sources.synthetic import write_synthetic_store

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_convergence_is_on_for_language_models_by_default_and_where_a_block_asks():
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg = validate_config(raw, SCHEMA)
    targets = {name: snapshot_target(exp, "convergence") for name, exp in cfg["experiments"].items()}
    assert targets["smollm2"] == ("topk-w1152-k64", "blocks.6.hook_out", [0.0, 0.1, 0.25, 0.5, 1.0], [])
    assert targets["toy"] is None and targets["modular"] is None
    raw = copy.deepcopy(raw)
    raw["experiments"]["toy"]["convergence"] = {"variant": "batchtopk-w50-k24", "fractions": [0.5, 0.2]}
    raw["experiments"]["smollm2"]["convergence"] = {"enabled": False}
    cfg = validate_config(raw, SCHEMA)
    assert snapshot_target(cfg["experiments"]["toy"], "convergence") == ("batchtopk-w50-k24", "toy", [0.0, 0.2, 0.5, 1.0], [])
    assert snapshot_target(cfg["experiments"]["smollm2"], "convergence") is None


@pytest.mark.parametrize(
    "block,message",
    [
        ({"variant": "topk-w9-k1"}, r"experiments\.smollm2\.convergence\.variant: 'topk-w9-k1' is not a variant"),
        ({"variant": "topk-w2304-k64", "hook": "blocks.15.hook_out"}, r"convergence\.hook: 'blocks\.15\.hook_out' is not a hook topk-w2304-k64 is trained at; hooks: blocks\.6\.hook_out$"),
        ({"fractions": [-0.1]}, r"experiments\.smollm2\.convergence\.fractions\[0\]: -0\.1 is less than the minimum of 0"),
        ({"every": 2}, r"experiments\.smollm2\.convergence: unknown key\(s\) every"),
    ],
)
def test_bad_convergence_blocks_are_refused_with_one_line(block, message):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw["experiments"]["smollm2"]["convergence"] = block
    with pytest.raises(SaesimError, match=message):
        validate_config(raw, SCHEMA)


pytest.importorskip("sae_lens")

from saesim.analysis.convergence import convergence_table, measure_convergence, row_cos  # noqa: E402
from saesim.saes.training import SAESpec, build_training_sae, read_snapshots, train_sae  # noqa: E402


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2},
             "std_firing_magnitudes": 0.15, "orthogonalization": {"num_steps": 300, "lr": 0.05}, "bias": False, "seed": 0}
    write_synthetic_store(path, model, 12_000, chunk_rows=2048, progress=False)
    return path


def spec(seed, arch="topk", **kw):
    return SAESpec(arch, 12, 3, seed, seed, lr=1e-2, training_samples=10_000, batch_size=256, eval_rows=2000, **kw)


@pytest.mark.parametrize("arch,b_dec_init", [("topk", "zeros"), ("batchtopk", "mean")])
def test_snapshot_at_fraction_0_is_the_initialised_sae_and_training_is_unchanged(toy_store, tmp_path, arch, b_dec_init):
    import torch

    s = spec(3, arch, b_dec_init=b_dec_init)
    plain = train_sae(toy_store, s, tmp_path / "plain")
    metrics = train_sae(toy_store, s, tmp_path / "snap", snapshots=[0, 0.5])
    # keeping snapshots leaves the published SAE as a plain run's, byte for byte
    assert metrics["weights_sha256"] == plain["weights_sha256"]
    # 40 steps of 256: 0 before the first step, 0.5 after step 20 (5,120 samples)
    assert metrics["snapshots"] == {"0": 0, "0.5": 5120}
    snaps = read_snapshots(tmp_path / "snap")
    assert sorted(snaps) == [0.0, 0.5]
    init = build_training_sae(s, 16)
    if b_dec_init == "mean":  # as train_sae starts it: the mean of the training rows
        from saesim.stores.activation_store import open_store
        from saesim.stores.rows import mean_row, split_rows

        with open_store(toy_store) as store:
            init.b_dec.data.copy_(torch.from_numpy(mean_row(store, split_rows(store, s)[0])).to(init.b_dec.dtype))
    state = init.state_dict()
    assert sorted(snaps[0.0][1]) == sorted(state)
    for k, v in state.items():  # bit for bit
        assert snaps[0.0][1][k].dtype == v.dtype and snaps[0.0][1][k].numpy().tobytes() == v.numpy().tobytes(), k
    # another init seed gives another fraction-0 snapshot; training moved the decoder
    other = build_training_sae(spec(4, arch, b_dec_init=b_dec_init), 16).state_dict()
    assert not torch.equal(other["W_dec"], snaps[0.0][1]["W_dec"])
    assert not torch.equal(snaps[0.5][1]["W_dec"], snaps[0.0][1]["W_dec"])
    assert not (tmp_path / "plain" / "snapshots.safetensors").exists()


def test_snapshots_survive_a_resumed_run(toy_store, tmp_path, monkeypatch):
    """A run killed after its trainer checkpoints resumes and keeps the snapshots it took
    before them: the published folder equals an uninterrupted run's, snapshots included."""
    import saesim.saes.training as training

    whole = train_sae(toy_store, spec(1), tmp_path / "whole", snapshots=[0, 0.25, 0.75])
    real_eval = training.evaluate_sae

    def killed(*a, **k):
        raise KeyboardInterrupt("killed after training")

    monkeypatch.setattr(training, "evaluate_sae", killed)
    with pytest.raises(KeyboardInterrupt):
        train_sae(toy_store, spec(1), tmp_path / "out", snapshots=[0, 0.25, 0.75], resume_dir=tmp_path / "resume", n_checkpoints=2)
    assert sorted(p.name for p in (tmp_path / "resume").glob("snapshot-*")) == ["snapshot-0.25.safetensors", "snapshot-0.75.safetensors", "snapshot-0.safetensors"]
    monkeypatch.setattr(training, "evaluate_sae", real_eval)
    resumed = train_sae(toy_store, spec(1), tmp_path / "out", snapshots=[0, 0.25, 0.75], resume_dir=tmp_path / "resume", n_checkpoints=2)
    assert resumed["resumed_from_samples"] is not None and resumed["resumed_from_samples"] > 0.25 * 10_000
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    a, b = read_snapshots(tmp_path / "whole"), read_snapshots(tmp_path / "out")
    assert sorted(a) == sorted(b) == [0.0, 0.25, 0.75]
    for f in a:
        assert a[f][0] == b[f][0] and all(a[f][1][k].numpy().tobytes() == b[f][1][k].numpy().tobytes() for k in a[f][1])


def test_bad_snapshot_requests_are_refused(toy_store, tmp_path):
    with pytest.raises(SaesimError, match=r"fractions must lie in \(0, 1\]"):
        train_sae(toy_store, spec(0), tmp_path / "x", snapshot_fractions=[0.0, 1.0], on_snapshot=lambda *a: None)
    with pytest.raises(SaesimError, match=r"snapshots must lie in \[0, 1\)"):
        train_sae(toy_store, spec(0), tmp_path / "x", snapshots=[0.0, 1.0])
    assert not (tmp_path / "x").exists()


def test_convergence_reads_snapshots_and_trains_nothing(toy_store, tmp_path, monkeypatch):
    import json

    import sae_lens

    import saesim.saes.training as training
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity import compare_decoders

    published = {s: tmp_path / f"pub{s}" for s in (0, 1, 2)}
    for s, d in published.items():
        train_sae(toy_store, spec(s), d, snapshots=[0, 0.5])
    null_pub = {s: tmp_path / f"null{s}" for s in (0, 1)}
    for s, d in null_pub.items():  # a stand-in null: other seeds on the same store
        train_sae(toy_store, spec(10 + s), d, snapshots=[0, 0.5])

    def no_training(*a, **k):
        raise AssertionError("the convergence analysis trained an SAE")

    monkeypatch.setattr(sae_lens.SAETrainer, "__init__", no_training)
    monkeypatch.setattr(sae_lens.SAETrainer, "fit", no_training)
    monkeypatch.setattr(training, "train_sae", no_training)
    baseline = {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0}}
    null = {"store": toy_store, "specs": {s: spec(10 + s) for s in (0, 1)}, "published": null_pub}
    res = measure_convergence(toy_store, {s: spec(s) for s in (0, 1, 2)}, [0.5], tmp_path / "work", published=published, baseline=baseline, null=null)
    assert res["trained"] is False and not (tmp_path / "work").exists()
    assert res["fractions"] == [0.0, 0.5, 1.0] and res["samples"] == [0, 5120, 10240]
    real_pairs = [p for p in res["per_pair"] if p["role"] == "real"]
    null_pairs = [p for p in res["per_pair"] if p["role"] == "null"]
    assert len(real_pairs) == 3 * 3 and len(null_pairs) == 3 * 1
    seeds = [r for r in res["per_seed"] if r["role"] == "real"]
    # drift: every latent's decoder row at 0 is its own initialisation; later it moved
    at0 = [r for r in seeds if r["fraction"] == 0.0]
    assert all(r["drift_cos_median"] == pytest.approx(1.0, abs=1e-6) and sum(r["drift_cos_hist"]) == 12 for r in at0)
    final = {r["seed"]: r for r in seeds if r["fraction"] == 1.0}
    w0 = read_snapshots(published[0])[0.0][1]["W_dec"].numpy()
    w1 = load_sae_weights(published[0]).W_dec
    assert final[0]["drift_cos_median"] == pytest.approx(float(np.median(row_cos(w1, w0))), abs=1e-6)
    assert final[0]["drift_cos_median"] < 0.99
    # the 1.0 row is the published SAEs: their metrics.json's EV and pair similarity
    table = convergence_table(res, experiment="toy")
    evs = [json.loads((published[s] / "metrics.json").read_text())["explained_variance"] for s in (0, 1, 2)]
    assert table.iloc[-1]["explained_variance_mean"] == pytest.approx(np.mean(evs), rel=1e-6)
    ref = compare_decoders(load_sae_weights(published[0]).W_dec, load_sae_weights(published[1]).W_dec, with_baseline=False)
    pair01 = [p for p in real_pairs if p["fraction"] == 1.0 and (p["seed_a"], p["seed_b"]) == (0, 1)][0]
    assert pair01["mmcs"] == pytest.approx(ref["mmcs"], abs=1e-7)
    assert (table["mmcs_baseline"] == 0.3).all() and table["mmcs_null"].notna().all()
    row = table.iloc[-1]
    assert row["mmcs_excess_null"] == pytest.approx((row["mmcs_mean"] - row["mmcs_null"]) / (1 - row["mmcs_null"]))
    assert {"drift_cos_median", "drift_cos_median_null", "explained_variance_null"} <= set(table.columns)


def test_convergence_names_a_folder_without_snapshots(toy_store, tmp_path):
    for s in (0, 1):
        train_sae(toy_store, spec(s), tmp_path / f"pub{s}")
    with pytest.raises(SaesimError, match=r"pub0: no training snapshots at fractions \[0\.0, 0\.5\]"):
        measure_convergence(toy_store, {s: spec(s) for s in (0, 1)}, [0.5], tmp_path / "w", published={s: tmp_path / f"pub{s}" for s in (0, 1)})


def test_convergence_module_imports_no_trainer():
    """The convergence module imports neither the trainer nor train_sae (it reads snapshots)."""
    import ast

    tree = ast.parse((ROOT / "src" / "saesim" / "analysis" / "convergence.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert "build_training_sae" in imported  # it rebuilds snapshots' SAEs ...
    assert not imported & {"SAETrainer", "train_sae", "MultiSAETrainer", "LoggingConfig"}  # ... and trains none


@pytest.mark.slow
def test_convergence_rule_on_a_toy_experiment(tmp_path):
    """The workflow on the small toy config with a convergence block: the training job keeps
    snapshots (real and null seeds of that variant only), the convergence job reads them
    without training (no trainer in its log) and the 1.0 row repeats the published SAEs' numbers."""
    import copy
    import json
    import subprocess
    import sys

    import pandas as pd
    from workflow_helpers import SMALL, copy_workflow

    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["convergence"] = {"fractions": [0.5]}
    cfg["experiments"]["toy"]["sae"]["variants"] = [{"architecture": "topk", "width": 12, "k": [2, 3]}]
    w = copy_workflow(tmp_path / "wf", cfg)
    target = "results/figures/toy_convergence.pdf"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target], cwd=w, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (w / target).stat().st_size > 1000 and (w / "results/figures/toy_convergence.png").stat().st_size > 1000
    res = json.loads((w / "results/toy/convergence.json").read_text())
    assert res["trained"] is False and res["variant"] == "topk-w12-k2" and res["hook"] == "toy"
    assert "Training SAE" not in (w / "results/logs/convergence/toy.log").read_text()
    table = pd.read_csv(w / "results/toy/tables/convergence.csv")
    assert list(table["fraction"]) == [0.0, 0.5, 1.0] and list(table["samples"]) == [0, 6144, 12032]  # 24 and 47 steps of 256
    assert table["drift_cos_median"].iloc[0] == pytest.approx(1.0, abs=1e-6) and table["mmcs_null"].notna().all()
    final = table.iloc[-1]
    metrics = [json.loads((w / f"results/toy/saes/toy/topk-w12-k2/seed{s}/metrics.json").read_text()) for s in (0, 1)]
    assert final["explained_variance_mean"] == pytest.approx(np.mean([m["explained_variance"] for m in metrics]), rel=1e-5)
    assert all(m["snapshots"] == {"0": 0, "0.5": 6144} for m in metrics)
    base = json.loads((w / "results/toy/baselines/toy/w12.json").read_text())
    assert final["mmcs_baseline"] == pytest.approx(base["mmcs"], rel=1e-5)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "results/toy/saes/toy/topk-w12-k3/seed0"], cwd=w, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (w / "results/toy/saes/toy/topk-w12-k3/seed0/snapshots.safetensors").exists()
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", target], cwd=w, capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_seed_mode_pairs_follow_the_config_rule():
    from saesim.workflow.config import seed_pair
    from saesim.analysis.seed_modes import MODES, mode_seed_pair

    for mode in MODES:
        exp = {"sae": {"seed_mode": mode, "fixed_seed": 7}}
        assert all(mode_seed_pair(mode, s, 7) == seed_pair(exp, s) for s in (0, 3))
    with pytest.raises(SaesimError, match="seed mode must be one of"):
        mode_seed_pair("neither", 0, 0)


@pytest.mark.slow
def test_seed_modes_rule_on_a_toy_experiment(tmp_path):
    """Shared vs independent initialisation on the small toy config: data_only starts at
    stability 1 (one shared initialisation), both and init_only at the random level; the
    both mode is read from the published SAEs (their snapshots), the others trained."""
    import copy
    import json
    import subprocess
    import sys

    import pandas as pd
    from workflow_helpers import SMALL, copy_workflow

    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["seed_modes"] = {"fractions": [0.5]}
    w = copy_workflow(tmp_path / "wf", cfg)
    target = "results/figures/toy_seed_modes.png"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", target], cwd=w, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (w / target).stat().st_size > 1000
    res = json.loads((w / "results/toy/seed_modes.json").read_text())
    assert res["trained_here"] == ["data_only", "init_only"] and res["modes"] == ["both", "init_only", "data_only"]
    t = pd.read_csv(w / "results/toy/tables/seed_modes.csv").set_index(["seed_mode", "fraction"])
    assert t.loc[("data_only", 0.0), "mmcs_mean"] == pytest.approx(1.0, abs=1e-6)
    assert t.loc[("both", 0.0), "mmcs_mean"] < 0.9 and t.loc[("init_only", 0.0), "mmcs_mean"] < 0.9
    # the both mode at 1.0 is the published SAEs' pair
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity import compare_decoders

    a, b = (load_sae_weights(w / f"results/toy/saes/toy/topk-w12-k2/seed{s}") for s in (0, 1))
    assert t.loc[("both", 1.0), "mmcs_mean"] == pytest.approx(compare_decoders(a.W_dec, b.W_dec, with_baseline=False)["mmcs"], abs=1e-6)


@pytest.mark.parametrize(("preset", "samples", "tokens"), [("smollm2-long", 10_000_000, 1_000_000), ("smollm2-long-1m", 1_000_000, 262_144),
                                                  ("smollm2-long-3m", 3_000_000, 262_144)])
def test_long_reference_preset_validates_with_log_scale_snapshots_from_0(preset, samples, tokens):
    """The long reference run and its CPU slice: log-scale snapshots from 0, both nulls."""
    raw = yaml.safe_load((ROOT / "config" / "presets" / "runs" / f"{preset}.yaml").read_text())
    exp = validate_config(raw, SCHEMA)["experiments"]["smollm2-long"]
    variant, hook, fractions, _ = snapshot_target(exp, "convergence")
    assert (variant, hook) == ("topk-w1152-k64", "blocks.6.hook_out") and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert exp["sae"]["training"]["training_samples"] >= samples and exp["source"]["corpus"]["n_tokens"] >= tokens
    assert exp["null"]["enabled"] and exp["model_null"]["variants"] == ["topk-w1152-k64"]
    ratios = [b / a for a, b in zip(fractions[1:-1], fractions[2:-1])]
    assert all(2.9 <= r <= 3.4 for r in ratios)  # log scale


def test_trajectory_figure_draws_without_a_null(tmp_path):
    """A convergence table without null SAEs (null disabled) still draws, from 0."""
    import pandas as pd

    from saesim.analysis.convergence import DRIFT_COLUMNS, QUALITY_METRICS
    from saesim.registry.metrics import TABLE_METRICS
    from saesim.report.figures import save_figure, trajectory_plot

    rows = []
    for f, n in ((0.0, 0), (0.5, 5000), (1.0, 10000)):
        row = {"variant": "v", "hook": "h", "fraction": f, "samples": n, "n_seeds": 2}
        for m in TABLE_METRICS:
            row.update({f"{m}_{s}": 0.3 + 0.2 * f for s in ("mean", "min", "max")}, **{f"{m}_baseline": 0.3, f"{m}_null": np.nan})
        for m in QUALITY_METRICS:
            row.update({f"{m}_{s}": 0.5 for s in ("mean", "min", "max")}, **{f"{m}_null": np.nan})
        for m in DRIFT_COLUMNS:
            row.update({m: 1 - 0.5 * f, f"{m}_null": np.nan})
        rows.append(row)
    fig = trajectory_plot(pd.DataFrame(rows), title="t")
    save_figure(fig, tmp_path / "t.pdf", tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_trajectory_axis_is_log_beyond_the_first_snapshot_only_for_log_spaced_snapshots():
    """Log-spaced snapshots (the long reference run: 10k .. 1M) get a symlog x axis, so the early
    ones do not pile up at 0; the default's 10%-100% snapshots keep a linear one. Ticks at the snapshots."""
    import matplotlib.pyplot as plt

    from saesim.report.figures import _samples_axis

    fig, (log_ax, lin_ax) = plt.subplots(1, 2)
    _samples_axis(log_ax, [0, 10_240, 30_208, 100_352, 300_032, 1_000_448], [0, 0.01, 0.03, 0.1, 0.3, 1.0])
    _samples_axis(lin_ax, [0, 6_144, 15_360, 30_208, 60_416], [0, 0.1, 0.25, 0.5, 1.0])
    assert log_ax.get_xscale() == "symlog" and lin_ax.get_xscale() == "linear"
    assert list(log_ax.get_xticks()) == [0, 10_240, 30_208, 100_352, 300_032, 1_000_448]
    assert [t.get_text() for t in log_ax.get_xticklabels()][:2] == ["0\n0%", "10.2k\n1%"]
    plt.close(fig)
