"""Nothing silently wrong, round two (issue 28): one test (or a few) per item, each failing on
the code before the fix. Items: 1 null pair scored like the real pair; 2 --out that cannot be
created; 3 hierarchy larger than num_features; 4 trained-SAE cache vs the store checks;
5 broken sparsify layers; 6 verify hashes cfg.json and store attributes; 7 config checks up
front; 8 smaller ones; 9 YTE configs refused; 10 figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from saesim.cli import main
from saesim.workflow.config import validate_config
from saesim.errors import SaesimError
from test_compare_null import write_sae

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in err, (needle, err)


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """r1, r2 random; a and a_neg its sign-flipped copy (signed cos -1 for every matched pair)."""
    root = tmp_path_factory.mktemp("saes")
    rng = np.random.default_rng(0)
    n, d = 128, 32
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    return {
        "a": write_sae(root / "a", dec, enc),
        "a_neg": write_sae(root / "a_neg", -dec, -enc),
        "r1": write_sae(root / "r1", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
        "r2": write_sae(root / "r2", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
    }


# -------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("cosine", ["abs", "signed"])
def test_item1_null_pair_is_scored_with_the_real_pair_s_cosine_and_options(capsys, saes, cosine):
    """The null pair (a, -a) scored as its own comparison with the same options gives exactly the
    ``_null`` values: by signed cos the sign-flipped copy is far from 1, by |cos| it is 1."""
    opts = ["--cosine", cosine, "--thresholds", "0.3", "0.6", "--shared-threshold", "0.4", "--top-m", "4",
            "--baseline-draws", "1", "--json"]
    code, out, err = run(capsys, "compare", saes["a"], saes["a_neg"], *opts)
    assert code == 0, err
    alone = json.loads(out)
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], *opts, "--null-a", saes["a"], "--null-b", saes["a_neg"])
    assert code == 0, err
    res = json.loads(out)
    for m in ("mmcs", "hungarian_mean_cos", "shared_latents_frac", "frac_matched_above", "frac_best_match_above"):
        assert res[f"{m}_null"] == alone[m], m
    if cosine == "signed":
        assert res["hungarian_mean_cos_null"] < 0.5  # not the |cos| value 1.0 of a sign-flipped copy
        assert res["mmcs_excess"] == pytest.approx((res["mmcs"] - alone["mmcs"]) / (1 - alone["mmcs"]))
    else:
        assert res["hungarian_mean_cos_null"] == pytest.approx(1.0)


def test_item1_excess_refuses_a_null_scored_differently():
    from saesim.similarity import excess_over_null

    with pytest.raises(SaesimError, match="cosine"):
        excess_over_null({"cosine": "signed", "mmcs": 0.5}, {"mmcs": 0.9})
    assert excess_over_null({"mmcs": 0.5}, {"mmcs": 0.0})["mmcs_excess"] == 0.5


# -------------------------------------------------------------------------- item 2


def test_item2_out_file_that_cannot_be_created_is_one_line_and_the_result_is_printed(capsys, saes, monkeypatch, tmp_path):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # as /proc, NFS root squash, ACLs, SELinux do

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "x.h5"
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--baseline-draws", "0", "--out", target)
    assert code == 1
    assert "mean max" in out.lower() or "mmcs" in out.lower() or "hungarian" in out.lower(), out  # the table
    one_line(err, target, "cannot write", "Permission denied")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--baseline-draws", "0", "--json", "--out", target)
    assert code == 1 and json.loads(out)["mmcs"] > 0  # the JSON result still comes out whole
    one_line(err, target)


# -------------------------------------------------------------------------- item 3


def toy_experiment(model):
    return {"experiments": {"t": {"source": {"kind": "toy", "model": model},
                                  "sae": {"seeds": [0, 1], "training": {"lr": 0.01, "training_samples": 1000, "batch_size": 64},
                                          "variants": [{"architecture": "topk", "width": 8, "k": [2]}]}}}}


def test_item3_hierarchy_larger_than_num_features_is_refused_naming_the_key():
    from saesim.sources.synthetic import hierarchy_size

    model = {"num_features": 8, "hidden_dim": 16, "bias": False, "seed": 0,
             "hierarchy": {"total_root_nodes": 50, "branching_factor": 4, "max_depth": 3}}
    with pytest.raises(SaesimError) as info:
        validate_config(toy_experiment(model), SCHEMA)
    msg = str(info.value)
    assert "experiments.t.source.model.hierarchy" in msg and "num_features=8" in msg and "4250" in msg and "\n" not in msg
    assert hierarchy_size({"total_root_nodes": 50, "branching_factor": 4, "max_depth": 3}) == 50 * (1 + 4 + 16 + 64)
    assert hierarchy_size({"total_root_nodes": 2, "branching_factor": [2, 3], "max_depth": 1}) == 2 * 4
    # exactly as many features as nodes is fine
    ok = {**model, "num_features": 12, "hierarchy": {"total_root_nodes": 4, "branching_factor": 2, "max_depth": 1}}
    validate_config(toy_experiment(ok), SCHEMA)


def test_item3_store_records_the_hierarchy_actually_built(tmp_path):
    from saesim.sources.synthetic import write_synthetic_store

    model = {"num_features": 16, "hidden_dim": 16, "bias": False, "seed": 0,
             "firing_probability": {"generator_name": "constant", "probability": 0.25},
             "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 2}}
    write_synthetic_store(tmp_path / "s.h5", model, 600, chunk_rows=200, progress=False)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        built = json.loads(f["ground_truth"].attrs["hierarchy_built"])
        parent = f["ground_truth/hierarchy_parent"][()]
        note = f["ground_truth"].attrs["l0_note"]
    # 2 roots, 4 children, 8 grandchildren: 14 of the 16 features
    assert built == {"n_roots": 2, "n_features_in_forest": 14, "max_depth": 2, "n_children": 12}
    assert (parent >= 0).sum() == 12
    assert "true_l0" in note and "expected_l0" in note  # item 8: which L0 to believe


# -------------------------------------------------------------------------- item 4


@pytest.fixture(scope="module")
def cache_setup(tmp_path_factory):
    pytest.importorskip("sae_lens")
    from saesim.sources.synthetic import write_synthetic_store
    from saesim.saes.training import SAESpec, train_sae

    root = tmp_path_factory.mktemp("cache")
    store = root / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "bias": False, "seed": 0,
             "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2}}
    write_synthetic_store(store, model, 6000, chunk_rows=1000, progress=False)
    spec = SAESpec("topk", 16, 3, 1, 1, lr=1e-2, training_samples=2048, batch_size=256, eval_rows=1000)
    train_sae(store, spec, root / "sae", trained_cache=root / "cache")
    return store, spec, root


def _damaged_copy(store, tmp_path, how):
    bad = tmp_path / "toy.h5"
    shutil.copy(store, bad)
    with h5py.File(bad, "r+") as f:
        if how == "nan_row":
            f["activations"][100] = np.nan
        elif how == "zero_variance":
            f["activations"][...] = 0.5
        elif how == "changed_rows":
            f["activations"][10:20] *= 2.0
        elif how == "changed_config_attr":
            f.attrs["hook"] = "blocks.3.hook_resid_post"
    return bad


@pytest.mark.parametrize("how,needle", [("nan_row", "non-finite activation (NaN/inf) at row 100"),
                                        ("zero_variance", "content hash mismatch"),
                                        ("changed_rows", "content hash mismatch"),
                                        ("changed_config_attr", "attribute hash mismatch")])
def test_item4_trained_cache_does_not_bypass_the_store_checks(cache_setup, tmp_path, how, needle):
    """A store damaged after training keeps its recorded content_hash, so the cache key still
    matches: the cache must check the rows first and stop with one line, publishing nothing."""
    from saesim.saes.training import _CHECKED_STORES, train_sae

    store, spec, root = cache_setup
    cache = tmp_path / "cache"
    shutil.copytree(root / "cache", cache)
    bad = _damaged_copy(store, tmp_path, how)
    _CHECKED_STORES.clear()
    with pytest.raises(SaesimError) as info:
        train_sae(bad, spec, tmp_path / "out", trained_cache=cache)
    msg = str(info.value)
    assert msg.startswith(str(bad)) and needle in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_item4_unchanged_store_still_restores_from_the_cache(cache_setup, tmp_path, capsys):
    from saesim.saes.training import train_sae

    store, spec, root = cache_setup
    cache = tmp_path / "cache"
    shutil.copytree(root / "cache", cache)
    metrics = train_sae(store, spec, tmp_path / "out", trained_cache=cache)
    assert "restored from" in capsys.readouterr().out
    assert metrics["weights_sha256"] == json.loads((root / "sae/metrics.json").read_text())["weights_sha256"]


# -------------------------------------------------------------------------- item 6


def test_item6_verify_catches_an_edited_cfg_json_and_edited_store_attributes(capsys, cache_setup, tmp_path):
    store, spec, root = cache_setup
    sae = tmp_path / "sae"
    shutil.copytree(root / "sae", sae)
    local_store = tmp_path / "toy.h5"
    shutil.copy(store, local_store)
    code, out, err = run(capsys, "verify", sae, local_store)
    assert code == 0, err
    cfg = json.loads((sae / "cfg.json").read_text())
    cfg["k"] = 5
    (sae / "cfg.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    code, out, err = run(capsys, "verify", sae)
    assert code == 1
    one_line(err, sae / "cfg.json", "sha256 mismatch")
    for key, value in (("n_rows", 5000), ("hook", "other"), ("config", json.dumps({"seed": 1}))):
        edited = tmp_path / f"edited_{key}.h5"
        shutil.copy(store, edited)
        with h5py.File(edited, "r+") as f:
            f.attrs[key] = value
        code, out, err = run(capsys, "verify", edited)
        assert code == 1, (key, out)
        assert str(edited) in err and ("attribute hash mismatch" in err or "n_rows" in err), err
    edited = tmp_path / "edited_gt.h5"
    shutil.copy(store, edited)
    with h5py.File(edited, "r+") as f:
        f["ground_truth"].attrs["synthetic_model_config"] = json.dumps({"num_features": 9})
    code, out, err = run(capsys, "verify", edited)
    one_line(err, edited, "attribute hash mismatch")


# -------------------------------------------------------------------------- item 5


@pytest.fixture
def run_folder(tmp_path):
    """run/layers.0, run/layers.1 whole SAEs; run/layers.2 a cfg.json without weights; run/notes unrelated."""
    rng = np.random.default_rng(3)
    run_dir = tmp_path / "run"
    for name in ("layers.0", "layers.1"):
        write_sae(run_dir / name, rng.standard_normal((32, 16)), rng.standard_normal((16, 32)))
    (run_dir / "layers.2").mkdir()
    (run_dir / "layers.2" / "cfg.json").write_text(json.dumps({"d_in": 16, "d_sae": 32}))
    (run_dir / "notes").mkdir()
    return run_dir


def test_item5_broken_run_subfolder_stops_naming_it_or_is_skipped_with_a_line(capsys, run_folder):
    from saesim.similarity.suites import expand_sae_specs

    with pytest.raises(SaesimError) as info:
        expand_sae_specs([run_folder])
    msg = str(info.value)
    assert "layers.2" in msg and "no sae.safetensors or sae_weights.safetensors" in msg and "notes" not in msg
    code, out, err = run(capsys, "compare", run_folder, "--baseline-draws", "0", "--json")
    assert code == 1
    one_line(err, run_folder, "layers.2", "--skip-broken")
    code, out, err = run(capsys, "compare", run_folder, "--baseline-draws", "0", "--json", "--skip-broken")
    assert code == 0, err
    assert [s["path"] for s in json.loads(out)["saes"]] == [str(run_folder / "layers.0"), str(run_folder / "layers.1")]
    assert "skipping incomplete SAE subfolder(s): layers.2" in err
    (run_folder / "layers.2" / "cfg.json").unlink()
    (run_folder / "layers.2" / "sae.safetensors").write_bytes(b"x")
    with pytest.raises(SaesimError, match=r"layers\.2 \(weights but no cfg\.json\)"):
        expand_sae_specs([run_folder])


def test_item5_imported_experiment_names_the_broken_subfolder(run_folder, capsys):
    from saesim.workflow.suite_runs import expand_imported

    with pytest.raises(SaesimError, match=r"layers\.2"):
        expand_imported([{"path": str(run_folder)}], "experiments.imp.source.saes")
    got = expand_imported([{"path": str(run_folder), "skip_broken": True}], "experiments.imp.source.saes")
    assert [g["label"] for g in got] == ["run-layers.0", "run-layers.1"]
    assert "experiments.imp.source.saes[0].path" in capsys.readouterr().err
    cfg = {"experiments": {"imp": {"source": {"kind": "saes", "saes": [{"path": str(run_folder), "skip_broken": True}]}}}}
    validate_config(cfg, SCHEMA)  # the key is in the schema


# -------------------------------------------------------------------------- item 7


def test_item7_eval_rows_above_a_fifth_of_a_toy_store_is_refused_at_validation():
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["experiments"]["toy"]["store"]["n_rows"] = 30000  # eval_rows 8192 > 6000
    with pytest.raises(SaesimError) as info:
        validate_config(cfg, SCHEMA)
    assert "experiments.toy.sae.training.eval_rows" in str(info.value) and "at most 6000" in str(info.value)
    cfg["experiments"]["toy"]["store"]["n_rows"] = 5 * 8192
    validate_config(cfg, SCHEMA)


def test_item7_a_model_no_machine_can_hold_is_refused_with_the_resource_model_s_number():
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_config(cfg, SCHEMA)  # the default run fits
    cfg["experiments"]["toy"]["source"] = {"kind": "toy", "model": {"num_features": 10**6, "hidden_dim": 10**6, "seed": 0}}
    with pytest.raises(SaesimError) as info:
        validate_config(cfg, SCHEMA)
    msg = str(info.value)
    assert "experiments.toy" in msg and "make_toy_store" in msg and "TB" in msg and "max_job_mem_mb" in msg and "\n" not in msg
    cfg["max_job_mem_mb"] = 1e12  # a config that names a larger machine
    validate_config(cfg, SCHEMA)


def _snakemake_n(work, *args):
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args], cwd=work,
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    return proc.returncode, proc.stdout + proc.stderr


def _imported_suite_config(paths, members=None):
    import copy

    from workflow_helpers import SMALL

    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["imp"] = {"source": {"kind": "saes", "saes": [{"path": str(p), "label": f"s{i}"} for i, p in enumerate(paths)]}}
    cfg["suites"] = {"s": {"experiment": "imp", "axis": "width", **({"members": members} if members else {})}}
    return cfg


@pytest.mark.parametrize("case", ["d_in", "member"])
def test_item7_suite_problems_stop_the_dag_at_start_up_in_one_line(tmp_path, case):
    from workflow_helpers import copy_workflow

    rng = np.random.default_rng(0)
    a = write_sae(tmp_path / "a", rng.standard_normal((32, 16)), rng.standard_normal((16, 32)))
    b = write_sae(tmp_path / "b", rng.standard_normal((32, 24 if case == "d_in" else 16)),
                  rng.standard_normal((24 if case == "d_in" else 16, 32)))
    cfg = _imported_suite_config([a, b], members=["s0", "nope"] if case == "member" else None)
    work = copy_workflow(tmp_path / "wf", cfg)
    code, out = _snakemake_n(work)
    assert code != 0
    needle = "s1 (" if case == "d_in" else "'nope' is not an SAE of imp"
    lines = [ln for ln in out.splitlines() if "Invalid configuration" in ln]
    assert len(lines) == 1 and needle in lines[0] and "suites.s.members" in lines[0], out[-3000:]
    assert "InputFunctionException" not in out and "Traceback" not in out and "Job stats" not in out


# -------------------------------------------------------------------------- item 8


def test_item8_real_pair_as_its_own_null_warns(capsys, saes):
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--json", "--baseline-draws", "0",
                         "--null-a", saes["r2"], "--null-b", saes["r1"])
    assert code == 0
    assert "warning: the null pair is the real pair itself" in err
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--json", "--baseline-draws", "0",
                         "--null-a", saes["a"], "--null-b", saes["a_neg"])
    assert code == 0 and err == ""


def test_item8_run_folder_of_one_sae_with_a_null_pair_is_one_pair(capsys, saes, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(saes["r1"], run_dir / "layers.3")
    code, out, err = run(capsys, "compare", run_dir, saes["r2"], "--json", "--baseline-draws", "0",
                         "--null-a", saes["a"], "--null-b", saes["a_neg"])
    assert code == 0, err
    res = json.loads(out)
    assert res["a"]["source"].endswith("layers.3") and res["mmcs_null"] is not None


def test_item8_symlink_loop_and_dangling_link_are_named(capsys, saes, tmp_path):
    from saesim.stores.activation_store import open_store

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    code, out, err = run(capsys, "compare", loop, saes["r1"], "--baseline-draws", "0")
    one_line(err, loop, "symlink loop")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--null-a", dangling, "--null-b", saes["r2"])
    one_line(err, dangling, "dangling symlink")
    with pytest.raises(SaesimError, match="symlink loop"):
        open_store(loop)


def test_item8_store_replaced_by_a_symlink_to_itself_stops_the_workflow(tmp_path):
    from workflow_helpers import SMALL, copy_workflow

    work = copy_workflow(tmp_path / "wf", SMALL)
    store = work / "results/toy/stores/toy.h5"
    store.parent.mkdir(parents=True)
    store.symlink_to(store)
    code, out = _snakemake_n(work)
    assert code != 0 and "Nothing to be done" not in out
    lines = [ln for ln in out.splitlines() if "Invalid configuration" in ln]
    assert len(lines) == 1 and "results/toy/stores/toy.h5" in lines[0] and "symlink loop" in lines[0], out[-3000:]


def test_item8_preset_or_model_error_names_both():
    cfg = toy_experiment({})
    cfg["experiments"]["t"]["source"] = {"kind": "toy"}
    with pytest.raises(SaesimError) as info:
        validate_config(cfg, SCHEMA)
    assert "experiments.t.source: needs 'preset' or 'model'" in str(info.value)


# -------------------------------------------------------------------------- item 9


def test_item9_yte_config_is_refused_before_snakemake_evaluates_it(tmp_path):
    from workflow_helpers import SMALL, copy_workflow

    work = copy_workflow(tmp_path / "wf", SMALL)
    marker = work / "PWNED"
    text = (work / "config.yaml").read_text()
    (work / "config.yaml").write_text(
        "__use_yte__: true\n" + text.replace("device: cpu", f"device: ?__import__('pathlib').Path({str(marker)!r}).touch() or 'cpu'"))
    code, out = _snakemake_n(work)
    assert code != 0
    assert not marker.exists()  # the expression never ran
    lines = [ln for ln in out.splitlines() if "Invalid configuration" in ln]
    assert len(lines) == 1 and "config.yaml: __use_yte__" in lines[0] and "Nothing in it was evaluated" in lines[0], out[-3000:]
    # a --configfile is read by Snakemake first: refused all the same, saying it already ran
    (work / "config.yaml").write_text(text)
    other = work / "other.yaml"
    other.write_text("__use_yte__: true\n" + text)
    code, out = _snakemake_n(work, "--configfile", str(other))
    assert code != 0
    lines = [ln for ln in out.splitlines() if "Invalid configuration" in ln]
    assert len(lines) == 1 and "other.yaml: __use_yte__" in lines[0] and "already evaluated" in lines[0], out[-3000:]


# -------------------------------------------------------------------------- item 10


def _layer_table(hooks, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [{"space": "one_to_one", "measure": m, "hook_a": a, "hook_b": b, "value": float(rng.uniform()),
             "null_mean": float(rng.uniform(0, 0.5))} for m in ("svcca", "rsa") for a in hooks for b in hooks]
    return pd.DataFrame(rows)


def _overlapping(labels) -> bool:
    boxes = [lab.get_window_extent() for lab in labels if lab.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


@pytest.mark.parametrize("n_hooks", [2, 4])
def test_item10_layer_heatmap_tick_labels_are_horizontal_and_do_not_overlap(n_hooks):
    import matplotlib.pyplot as plt

    from saesim.report.figures import layer_heatmap

    hooks = [f"blocks.{i}.hook_out" for i in (3, 6, 15, 24)[:n_hooks]]
    fig = layer_heatmap(_layer_table(hooks), title="t")
    fig.canvas.draw()
    for ax in [a for a in fig.axes if a.get_ylabel() == "SAE A hook"]:
        ys = ax.get_yticklabels()
        assert [t.get_text() for t in ys] == hooks
        assert all(t.get_rotation() == 0 for t in ys)
        assert not _overlapping(ys) and not _overlapping(ax.get_xticklabels())
        assert min(t.get_fontsize() for t in ys) >= 8
    plt.close(fig)


def _suite_table(members, values, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, a in enumerate(members):
        for j, b in enumerate(members):
            if i != j:
                r = {"row": a, "col": b, "row_value": values[i], "col_value": values[j], "axis": "k", "cosine": "abs",
                     "mmcs": float(rng.uniform()), "mmcs_baseline": 0.16}
                for t in ("0.7", "0.8", "0.9"):
                    r[f"frac_best_{t}"], r[f"frac_best_{t}_baseline"] = float(rng.uniform()), 0.0
                rows.append(r)
    return pd.DataFrame(rows)


def test_item10_suite_matrix_wraps_panels_into_a_grid_with_readable_labels(tmp_path):
    import matplotlib.pyplot as plt

    from saesim.report.figures import save_figure, suite_matrix

    members = [f"topk-w4096-k{k}" for k in (16, 32, 64, 128)]
    table = _suite_table(members, [16, 32, 64, 128])
    fig = suite_matrix(table, members, title="suite smollm2-k")
    w, h = fig.get_size_inches()
    assert w / h < 1.5  # four panels as 2 x 2, not one row four times as wide as tall
    fig.canvas.draw()
    heat = [ax for ax in fig.axes if ax.get_title()]
    assert len(heat) == 4
    assert len({round(ax.get_position().y0, 3) for ax in heat}) == 2  # two rows of panels
    for ax in heat:
        assert all(t.get_fontsize() >= 8 for t in ax.texts)  # cell annotations
        assert all(t.get_fontsize() >= 8 for t in ax.get_yticklabels() + ax.get_xticklabels() if t.get_text())
        assert not _overlapping(ax.get_xticklabels())
    plt.close(fig)
    # deterministic: the same table gives the same PNG bytes
    for name in ("a", "b"):
        save_figure(suite_matrix(table, members, title="s"), tmp_path / f"{name}.pdf", tmp_path / f"{name}.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_item10_convergence_figure_draws_the_trained_null():
    """The convergence figure (trajectory_plot, what rule plot_convergence draws) puts the trained
    null's seed pairs at each snapshot on the stability panel as dotted lines, with a legend entry."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from saesim.analysis.convergence import DRIFT_COLUMNS, QUALITY_METRICS
    from saesim.registry.metrics import TABLE_METRICS
    from saesim.report.figures import trajectory_plot

    rows = []
    for f, n in ((0.0, 0), (0.5, 5000), (1.0, 10000)):
        row = {"variant": "v", "hook": "h", "fraction": f, "samples": n, "n_seeds": 2}
        for i, m in enumerate(TABLE_METRICS):
            row.update({f"{m}_{s}": 0.3 + 0.5 * f for s in ("mean", "min", "max")}, **{f"{m}_baseline": 0.1,
                       f"{m}_null": 0.4 + 0.01 * i})
        for m in QUALITY_METRICS:
            row.update({f"{m}_{s}": 0.5 for s in ("mean", "min", "max")}, **{f"{m}_null": 0.4})
        for m in DRIFT_COLUMNS:
            row.update({m: 1 - 0.5 * f, f"{m}_null": 1 - 0.2 * f})
        rows.append(row)
    fig = trajectory_plot(pd.DataFrame(rows), title="t")
    ax = fig.axes[0]
    levels = {round(float(y), 6) for line in ax.get_lines() if line.get_linestyle() == ":" for y in line.get_ydata()}
    assert levels == {round(0.4 + 0.01 * i, 6) for i in range(len(TABLE_METRICS))}
    legend_texts = [x.get_text() for a in fig.axes for lg in ([a.get_legend()] if a.get_legend() else [])
                    for x in lg.get_texts()] + [x.get_text() for lg in fig.legends for x in lg.get_texts()]
    assert any("trained null" in x for x in legend_texts)
    plt.close(fig)
