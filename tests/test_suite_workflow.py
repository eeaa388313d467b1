"""Suites in the workflow: imported SAEs (source kind saes) and config ``suites``.

The imported SAEs are written by the field's own writers (EleutherAI's sparsify,
including its multi-hookpoint run layout, and sae-lens); the wide one contains
the narrow one's decoder rows exactly, so its best-match fractions are known.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import snakemake
from test_suites import training_sae, write_sparsify
from workflow_helpers import SMALL, copy_workflow, job_counts

from saesim.workflow.config import validate_config
from saesim.errors import SaesimError
from saesim.workflow.suite_runs import expand_imported, matrix_table

D = 16  # the toy store's d in SMALL
N_NARROW, N_WIDE = 24, 48
SCHEMA = "workflow/schemas/config.schema.yaml"


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """run/layers.0, run/layers.1 (sparsify run, 24 latents, k 4), wide/ (sparsify, 48 latents holding
    layers.0's rows), lens/ (sae-lens TopK, 32 latents)."""
    root = tmp_path_factory.mktemp("imported")
    rng = np.random.default_rng(0)
    U0 = unit(rng.standard_normal((N_NARROW, D))).astype(np.float32)
    U1 = unit(rng.standard_normal((N_NARROW, D))).astype(np.float32)
    W = np.concatenate([U0, unit(rng.standard_normal((N_WIDE - N_NARROW, D)))]).astype(np.float32)
    write_sparsify(root / "run" / "layers.0", U0, k=4)
    write_sparsify(root / "run" / "layers.1", U1, k=4)
    write_sparsify(root / "wide" / "layers.0", W, k=4)
    training_sae(unit(rng.standard_normal((32, D))).astype(np.float32), k=4).save_inference_model(str(root / "lens"))
    return root


def test_expand_imported_labels_run_folders_globs_and_errors(saes, tmp_path):
    got = expand_imported([{"path": str(saes / "run"), "label": "narrow"}, {"path": str(saes / "wide" / "layers.0")},
                           {"path": str(saes / "lens"), "hook": "blocks.0.hook_out", "seed": 3}], "saes")
    assert [g["label"] for g in got] == ["narrow-layers.0", "narrow-layers.1", "layers.0", "lens"]
    assert got[0]["spec"] == str(saes / "run" / "layers.0") and got[0]["run"] == "narrow"
    assert got[3]["hook"] == "blocks.0.hook_out" and got[3]["seed"] == 3
    assert got[0]["files"] == [str(saes / "run" / "layers.0" / "cfg.json"), str(saes / "run" / "layers.0" / "sae.safetensors")]
    # a run folder without a label: run-hookpoint; a glob: the path below its fixed part
    assert [g["label"] for g in expand_imported([{"path": str(saes / "run")}], "s")] == ["run-layers.0", "run-layers.1"]
    globbed = expand_imported([{"path": str(saes / "*" / "layers.0")}], "s")
    assert [g["label"] for g in globbed] == ["run-layers.0", "wide-layers.0"]
    with pytest.raises(SaesimError, match=r"^s\[0\]\.path: .*missing: no such file or directory$"):
        expand_imported([{"path": str(tmp_path / "missing")}], "s")
    with pytest.raises(SaesimError, match=r"^s\[0\]\.path: .* matches nothing$"):
        expand_imported([{"path": str(tmp_path / "*" / "nothing")}], "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaesimError, match=r"is not an SAE .* nor a run folder"):
        expand_imported([{"path": str(tmp_path / "empty")}], "s")
    with pytest.raises(SaesimError, match=r"two SAEs get the label 'layers.0'"):
        expand_imported([{"path": str(saes / "run" / "layers.0")}, {"path": str(saes / "wide" / "layers.0")}], "s")


def test_registry_id_offline_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = "gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical"
    with pytest.raises(SaesimError) as e:
        expand_imported([{"path": spec}], "experiments.gs.source.saes")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"experiments.gs.source.saes[0].path: {spec} ")
    assert "needs the Hugging Face hub" in msg
    # without the check, the id is kept as given, labelled by its sae_id
    got = expand_imported([{"path": spec}], "s", check_registry=False)
    assert got == [{"label": "layer_12-width_16k-canonical", "spec": spec, "files": [], "registry": True,
                    "run": "gemma-scope-2b-pt-res-canonical"}]


def _config(**suites):
    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["sae"]["variants"] = [
        {"architecture": "topk", "width": 12, "k": [2]},
        {"architecture": "topk", "width": 24, "k": [2]},
    ]
    cfg["suites"] = suites
    return cfg


@pytest.mark.parametrize(
    "suite, message",
    [
        ({"experiment": "nope", "axis": "width"}, "suites.s.experiment: 'nope' is not an experiment"),
        ({"experiment": "toy", "axis": "width", "members": ["topk-w12-k2", "topk-w99-k2"]},
         "suites.s.members: 'topk-w99-k2' is not a variant toy trains at toy"),
        ({"experiment": "toy", "axis": "hook"}, "suites.s.variant: axis hook needs the variant"),
        ({"experiment": "toy", "axis": "width", "seed": 7}, "suites.s.seed: 7 is not among the seeds"),
        ({"experiment": "toy", "axis": "size"}, "suites.s.axis: 'size' is not allowed"),
        ({"experiment": "toy", "axis": "k", "members": ["topk-w12-k2"]}, "suites.s.members"),
    ],
)
def test_bad_suite_is_one_line_naming_the_key(suite, message):
    with pytest.raises(SaesimError) as e:
        validate_config(_config(s=suite), SCHEMA)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_suite_defaults_and_imported_experiment_without_sae_block():
    cfg = _config(s={"experiment": "toy", "axis": "width"})
    cfg["experiments"]["imp"] = {"source": {"kind": "saes", "saes": [{"path": "x"}]}}
    out = validate_config(cfg, SCHEMA)
    assert out["suites"]["s"]["members"] == ["topk-w12-k2", "topk-w24-k2"]
    assert out["suites"]["s"]["hook"] == "toy" and out["suites"]["s"]["seed"] == 0
    assert out["suites"]["s"]["thresholds"] == [0.7, 0.8, 0.9]
    assert out["experiments"]["imp"]["source"]["eval_rows"] == 4096
    cfg["experiments"]["imp"]["sae"] = cfg["experiments"]["toy"]["sae"]
    with pytest.raises(SaesimError, match=r"experiments\.imp\.sae: an imported-SAE experiment"):
        validate_config(cfg, SCHEMA)
    del cfg["experiments"]["toy"]["sae"]
    with pytest.raises(SaesimError, match=r"experiments\.toy: 'sae' is a required property"):
        validate_config(cfg, SCHEMA)


def test_matrix_table_rows_both_directions_in_member_order():
    def info(label, n):
        return {"label": label, "n": n, "width": n, "hookpoint": "h"}

    base = {"mmcs_a_to_b": 0.1, "mmcs_b_to_a": 0.2, "mmcs": 0.15, "hungarian_mean_cos": 0.05,
            "frac_best_match_above_a_to_b": {"0.9": 0.0}, "frac_best_match_above_b_to_a": {"0.9": 0.01}}
    pair = {"d": 4, "mmcs_a_to_b": 0.9, "mmcs_b_to_a": 0.5, "mmcs": 0.7, "hungarian_mean_cos": 0.6,
            "frac_best_match_above_a_to_b": {"0.9": 1.0}, "frac_best_match_above_b_to_a": {"0.9": 0.5}, "baseline": base,
            "splitting": {"narrow": 0, "by_threshold": {"0.9": {"mean_partners": 1.0, "frac_narrow_split": 0.0,
                                                                  "frac_wide_unmatched": 0.5,
                                                                  "baseline": {"mean_partners": 0.0,
                                                                               "frac_wide_unmatched": 1.0}}}}}
    cell = {"suite": "s", "axis": "width", "cosine": "abs", "saes": [info("n", 2), info("w", 4)], "pair": pair}
    t = matrix_table([cell], ["w", "n"])
    assert list(zip(t["row"], t["col"])) == [("w", "n"), ("n", "w")]
    w2n, n2w = t.iloc[0], t.iloc[1]
    assert (n2w["mmcs"], n2w["mmcs_baseline"], n2w["frac_best_0.9"], n2w["frac_best_0.9_baseline"]) == (0.9, 0.1, 1.0, 0.0)
    assert (w2n["mmcs"], w2n["mmcs_baseline"], w2n["frac_best_0.9"], w2n["frac_best_0.9_baseline"]) == (0.5, 0.2, 0.5, 0.01)
    assert n2w["split_0.9_frac_wide_unmatched"] == 0.5 and np.isnan(w2n["split_0.9_frac_wide_unmatched"])
    assert (n2w["row_value"], w2n["row_value"]) == (2, 4)


def _cli_json(a, b, draws):
    proc = subprocess.run(
        [sys.executable, "-m", "saesim.cli", "compare", str(a), str(b), "--json", "--thresholds", "0.7", "0.8", "0.9",
         "--baseline-draws", str(draws)], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_imported_suite_in_a_tiny_workflow_equals_saesim_compare(saes, tmp_path):
    cfg = _config(**{"imp": {"experiment": "imported", "axis": "width"}, "toy-widths": {"experiment": "toy", "axis": "width"}})
    cfg["experiments"]["imported"] = {"source": {
        "kind": "saes",
        "saes": [{"path": str(saes / "run"), "label": "narrow"}, {"path": str(saes / "wide" / "layers.0"), "label": "wide"},
                 {"path": str(saes / "lens"), "hook": "blocks.0.hook_out"}],
        "store": "results/toy/stores/toy.h5",
        "eval_rows": 1024,
    }}
    w = copy_workflow(tmp_path / "wf", cfg)
    # the whole DAG builds, with one job per cell
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=w, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert counts["import_sae"] == 4 and counts["suite_cell"] == 6 + 1
    assert counts["suite_matrix"] == 2 and counts["plot_suite_splitting"] == 2 and counts["imported_saes_table"] == 1
    targets = ["results/suites/imp/matrix.csv", "results/figures/suite-imp_matrix.pdf",
               "results/figures/suite-imp_splitting.pdf", "results/suites/toy-widths/matrix.csv",
               "results/figures/suite-toy-widths_matrix.png", "results/imported/tables/imported_saes.csv"]
    snakemake(w, *targets)
    for t in targets:
        assert (w / t).stat().st_size > 200, t

    # identities: hook, width, k from the configs; L0 and EV measured on the toy store
    ident = {lab: json.loads((w / f"results/imported/saes_imported/{lab}.json").read_text())
             for lab in ("narrow-layers.0", "narrow-layers.1", "wide", "lens")}
    assert ident["narrow-layers.1"]["hookpoint"] == "layers.1" and ident["narrow-layers.1"]["layer"] == 1
    assert ident["lens"]["hookpoint"] == "blocks.0.hook_out" and ident["lens"]["format"] == "sae_lens"
    assert [ident[k]["width"] for k in ("narrow-layers.0", "wide", "lens")] == [24, 48, 32]
    for lab, i in ident.items():
        assert i["k"] == 4 and i["l0_source"] == "store" and 0 < i["l0"] <= 4 + 1e-9, (lab, i)
        assert i["eval_rows"] == 1024 and np.isfinite(i["explained_variance"]) and 0 <= i["dead_fraction"] <= 1

    # the matrix equals saesim compare for the same pair (same thresholds and baseline draws)
    import pandas as pd

    m = pd.read_csv(w / "results/suites/imp/matrix.csv").set_index(["row", "col"])
    assert len(m) == 4 * 3
    cli = _cli_json(saes / "run" / "layers.0", saes / "wide" / "layers.0", cfg["baseline_draws"])
    cell = json.loads((w / "results/suites/imp/narrow-layers.0__wide.json").read_text())
    for key, value in cli.items():
        if key == "baseline":  # the cell's baseline adds both directions of the best-match fraction
            for k, v in value.items():
                if k != "method":
                    assert cell["pair"]["baseline"][k] == v, k
        # null: the CLI's --null-a/--null-b pair (none here); the contract stamp names the CLI's own inputs
        elif key not in ("a", "b", "seconds", "null", "schema_version", "document", "provenance"):
            assert cell["pair"][key] == value, key
    n2w, w2n = m.loc[("narrow-layers.0", "wide")], m.loc[("wide", "narrow-layers.0")]
    assert n2w["mmcs"] == pytest.approx(cli["mmcs_a_to_b"], abs=1e-6)
    assert w2n["mmcs"] == pytest.approx(cli["mmcs_b_to_a"], abs=1e-6)
    assert n2w["mmcs_baseline"] == pytest.approx(cli["baseline"]["mmcs_a_to_b"], abs=1e-6)
    assert n2w["hungarian_mean_cos"] == pytest.approx(cli["hungarian_mean_cos"], abs=1e-6)
    assert n2w["hungarian_mean_cos_baseline"] == pytest.approx(cli["baseline"]["hungarian_mean_cos"], abs=1e-6)
    # known answers: every narrow row reappears in the wide SAE; half of the wide ones have a narrow partner
    assert n2w["frac_best_0.9"] == pytest.approx(1.0) and w2n["frac_best_0.9"] == pytest.approx(0.5, abs=0.05)
    assert n2w["split_0.9_frac_wide_unmatched"] == pytest.approx(0.5, abs=0.05)
    assert n2w["frac_best_0.9_baseline"] < 0.05

    # a trained suite: the toy widths
    t = pd.read_csv(w / "results/suites/toy-widths/matrix.csv")
    assert list(zip(t["row"], t["col"])) == [("topk-w12-k2", "topk-w24-k2"), ("topk-w24-k2", "topk-w12-k2")]
    assert list(t["row_value"]) == [12, 24] and t["l0_row"].between(1, 2.01).all()

    # a second run starts no job
    again = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", *targets], cwd=w,
                           capture_output=True, text=True, timeout=300)
    assert job_counts(again.stdout) == {}, again.stdout[-2000:]


def test_offline_registry_id_stops_the_dag_before_any_job(tmp_path):
    cfg = _config()
    cfg["experiments"]["gs"] = {"source": {"kind": "saes", "saes": [
        {"path": "gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical"}]}}
    w = copy_workflow(tmp_path / "wf", cfg)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=w, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    lines = [ln for ln in out.splitlines() if "needs the Hugging Face hub" in ln]
    assert len(lines) == 1 and "experiments.gs.source.saes[0].path: gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical" in lines[0]
    assert "Job stats" not in out and not (w / "results").exists()
