"""saesim.workflow.planning.Plan: the DAG facts the rules read (inputs, params, the default
target, start-up checks) on known configs: the TINY test workflow and the default config."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import TINY

from saesim.workflow import layout
from saesim.workflow.config import snapshot_target, validate_config
from saesim.errors import SaesimError
from saesim.workflow import planning
from saesim.workflow.planning import Plan

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TOY_VARIANTS = ["topk-w12-k2", "topk-w12-k4", "standard-w12-l1c0.05"]


def plan_of(raw: dict) -> Plan:
    return Plan(validate_config(copy.deepcopy(raw), SCHEMA))


@pytest.fixture(scope="module")
def tiny() -> Plan:
    return plan_of(TINY)


@pytest.fixture(scope="module")
def default() -> Plan:
    return plan_of(yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_all_targets_of_the_tiny_workflow(tiny):
    pages = [f"results/toy/features/toy/{v}/seed0-seed1.html" for v in TOY_VARIANTS]
    figures = ["stability_vs_l0", "seed_heatmap", "recovery_vs_l0", "latent_vs_truth", "pwmcc_vs_gtmcc", "coactivation"]
    assert tiny.all_targets() == [
        "results/toy/tables/stability.csv",
        "results/toy/tables/summary.md",
        *(f"results/figures/toy_{name}.{ext}" for name in figures for ext in ("pdf", "png")),
        "results/toy/tables/per_latent.csv",
        "results/figures/toy_per_latent.pdf",
        "results/figures/toy_per_latent.png",
        "results/toy/features/index.html",
        *pages,
        "results/summary.csv",
        "results/summary.md",
        "results/summary.html",
        "results/figures/summary-coordinate_spaces.pdf",
        "results/figures/summary-coordinate_spaces.png",
        "results/tables/summary-coordinate_spaces.csv",
    ]


def test_switching_off_per_latent_and_feature_pages_drops_them_and_a_block_adds_its_figure():
    raw = copy.deepcopy(TINY)
    raw["per_latent"] = {"enabled": False}
    raw["feature_pages"] = {"enabled": False}
    targets = plan_of(raw).all_targets()
    assert not [t for t in targets if "per_latent" in t or "/features/" in t]
    raw = copy.deepcopy(TINY)
    raw["experiments"]["toy"]["convergence"] = {"variant": "topk-w12-k4"}
    targets = plan_of(raw).all_targets()
    assert "results/figures/toy_convergence.pdf" in targets and "results/figures/toy_seed_modes.pdf" not in targets


def test_saes_pairs_and_null_mirror_of_the_tiny_workflow(tiny):
    assert tiny.hook_variants("toy") == [("toy", v) for v in TOY_VARIANTS]
    assert tiny.saes("toy") == [f"results/toy/saes/toy/{v}/seed{s}" for v in TOY_VARIANTS for s in (0, 1)]
    assert tiny.saes("toy", null=True) == [f"results/toy/null/saes/toy/{v}/seed{s}" for v in TOY_VARIANTS for s in (0, 1)]
    assert tiny.pair_files("toy", null=True) == [f"results/toy/null/pairs/toy/{v}/seed0-seed1.json" for v in TOY_VARIANTS]
    assert tiny.baseline_files("toy") == ["results/toy/baselines/toy/w12.json"]
    assert tiny.ground_truth_files("toy", null=True)[0] == "results/toy/null/ground_truth/toy/topk-w12-k2/seed0.json"
    assert tiny.fourier_files("toy", null=True) == []  # toy stores carry no key frequencies
    assert tiny.downstream_files("toy") == []
    assert tiny.moments_source("toy", "toy") == "results/toy/null/stores/toy.h5"
    assert tiny.sae_keys("toy")[:2] == ["toy/topk-w12-k2/seed0", "toy/topk-w12-k2/seed1"]


def test_without_the_null_nothing_of_it_is_planned():
    raw = copy.deepcopy(TINY)
    raw["experiments"]["toy"]["null"] = {"enabled": False}
    p = plan_of(raw)
    assert p.roles("toy") == (False,)
    assert p.saes("toy", null=True) == [] and p.pair_files("toy", null=True) == [] and p.ground_truth_files("toy", null=True) == []
    assert p.moments_source("toy", "toy") == "results/toy/stores/toy.h5"
    assert all(s["role"] == "real" for s in p.per_latent_saes("toy"))


def test_training_params_per_variant_and_per_experiment_agree(tiny):
    w = SimpleNamespace(exp="toy", hook="toy", variant="topk-w12-k4")
    per_variant = {key: f(w) for key, f in tiny.variant_training_params(null=True).items()}
    saes = [s for s in tiny.experiment_training_saes("toy", null=True) if s[2] == "topk-w12-k4"]
    assert per_variant == tiny.training_params(saes, null=True)
    assert per_variant["stores"] == ["results/toy/null/stores/toy.h5"] * 2
    assert per_variant["resume_dirs"] == [f"results/.resume/toy/null/toy/topk-w12-k4/seed{s}" for s in (0, 1)]
    assert per_variant["identities"][1] == {"experiment": "toy", "hook": "toy", "variant": "topk-w12-k4", "seeds": [1], "role": "null"}
    assert [(spec["sparsity"], spec["init_seed"]) for spec in per_variant["specs"]] == [(4.0, 0), (4.0, 1)]
    assert per_variant["snapshots"] == [[], []]


def test_snapshots_are_kept_for_the_convergence_and_seed_modes_variants():
    raw = copy.deepcopy(TINY)
    raw["experiments"]["toy"]["convergence"] = {"variant": "topk-w12-k4", "fractions": [0.5]}
    raw["experiments"]["toy"]["seed_modes"] = {"variant": "topk-w12-k4", "modes": ["both", "data_only"], "fractions": [0.25]}
    p = plan_of(raw)
    assert p.snapshot_fractions("toy", "toy", "topk-w12-k4") == [0.0, 0.25, 0.5]
    assert p.snapshot_fractions("toy", "toy", "topk-w12-k2") == []
    assert p.snapshot_target("toy", "seed_modes") == ("topk-w12-k4", "toy", [0.0, 0.25, 1.0], ["both", "data_only"])
    assert p.seed_modes_published("toy") == ["results/toy/saes/toy/topk-w12-k4/seed0", "results/toy/saes/toy/topk-w12-k4/seed1"]
    specs = p.seed_modes_specs("toy")
    assert list(specs) == ["both", "data_only"]
    assert [(s["init_seed"], s["data_seed"]) for s in specs["data_only"]] == [(0, 0), (0, 1)]
    assert [(s["init_seed"], s["data_seed"]) for s in specs["both"]] == [(0, 0), (1, 1)]
    assert p.target_baseline("toy", "convergence") == "results/toy/baselines/toy/w12.json"
    assert p.convergence_specs("toy", null=True) == [p.sae_spec("toy", "topk-w12-k4", s) for s in (0, 1)]
    assert p.experiments_with("convergence") == "toy" and p.experiments_with("seed_modes") == "toy"


def test_snapshot_target_is_one_function_for_both_blocks():
    exp = plan_of(TINY).experiments["toy"]
    assert snapshot_target(exp, "convergence") is None and snapshot_target(exp, "seed_modes") is None
    with pytest.raises(ValueError, match="'nope' is not one of convergence, seed_modes"):
        snapshot_target(exp, "nope")
    exp = copy.deepcopy(exp)
    exp["convergence"] = {"variant": "nope"}
    with pytest.raises(SaesimError, match=r"^convergence\.variant: 'nope' is not a variant"):
        snapshot_target(exp, "convergence")


def test_suite_members_cells_and_params_of_trained_saes():
    raw = copy.deepcopy(TINY)
    raw["suites"] = {"k": {"experiment": "toy", "hook": "toy", "axis": "k", "members": ["topk-w12-k2", "topk-w12-k4"]}}
    p = plan_of(raw)
    members = p.suite_members("k")
    assert members["topk-w12-k4"] == {
        "kind": "trained", "spec": "results/toy/saes/toy/topk-w12-k4/seed0", "info": "results/toy/saes/toy/topk-w12-k4/seed0",
        "hook": "toy", "variant": "topk-w12-k4", "seed": 0,
    }
    assert p.suite_cell_files("k") == ["results/suites/k/topk-w12-k2__topk-w12-k4.json"]
    w = SimpleNamespace(suite="k", a="topk-w12-k2", b="topk-w12-k4")
    assert p.suite_cell_inputs(w) == {"a": members["topk-w12-k2"]["info"], "b": members["topk-w12-k4"]["info"]}
    cell = p.suite_cell_params(w)
    assert cell["a"]["label"] == "topk-w12-k2" and "info" not in cell["a"] and cell["b"]["variant"] == "topk-w12-k4"
    assert cell["options"]["baseline_draws"] == 2 and cell["options"]["seed"] == 0 and cell["options"]["axis"] == "k"
    assert p.suite_files("k") == ["results/suites/k/matrix.csv", "results/figures/suite-k_matrix.pdf", "results/figures/suite-k_matrix.png"]
    assert p.all_targets()[:3] == p.suite_files("k")


def test_comparison_inputs_files_and_exclusions_of_the_default_config(default):
    w = SimpleNamespace(cmp="smollm2-widths", hook_a="blocks.6.hook_out", hook_b="blocks.6.hook_out")
    assert default.comparison_inputs(w) == {
        "store_a": "results/smollm2/stores/blocks.6.hook_out.h5",
        "sae_a": "results/smollm2/saes/blocks.6.hook_out/topk-w1152-k64/seed0",
        "store_b": "results/smollm2/stores/blocks.6.hook_out.h5",
        "sae_b": "results/smollm2/saes/blocks.6.hook_out/topk-w2304-k64/seed0",
        "junk_a": "results/smollm2/junk_token_ids.json",
        "junk_b": "results/smollm2/junk_token_ids.json",
    }
    w = SimpleNamespace(cmp="modular-model-seeds", hook_a="blocks.0.hook_mlp_out", hook_b="blocks.0.hook_mlp_out")
    assert sorted(default.comparison_inputs(w)) == ["sae_a", "sae_b", "store_a", "store_b"]  # no junk tokens
    assert default.comparison_inputs(w)["sae_b"] == "results/modular-s1/saes/blocks.0.hook_mlp_out/topk-w512-k16/seed0"
    assert default.comparison_files("smollm2-widths") == ["results/comparisons/smollm2-widths/blocks.6.hook_out__blocks.6.hook_out.json"]
    assert len(default.comparison_files("smollm2-layers")) == 4  # 2 hooks x 2 hooks
    assert set(default.comparison_exclusions("smollm2-layers")) == {"a", "b"}
    targets = default.all_targets()
    assert "results/comparisons/smollm2-layers/transfer.csv" in targets and "results/suites/smollm2-widths/matrix.csv" in targets
    assert any(t.startswith("results/modular/causal/") for t in targets)
    # causal equivalence of SmolLM2 k 64 at blocks.6: the language-model job's inputs and options
    assert default.causal_files("smollm2") == ["results/smollm2/causal/blocks.6.hook_out/topk-w1152-k64/seed0-seed1.json"]
    assert default.causal_files("smollm2")[0] in targets
    w = SimpleNamespace(exp="smollm2", hook="blocks.6.hook_out", variant="topk-w1152-k64", a="0", b="1")
    assert default.causal_inputs(w) == {
        "a": "results/smollm2/saes/blocks.6.hook_out/topk-w1152-k64/seed0",
        "b": "results/smollm2/saes/blocks.6.hook_out/topk-w1152-k64/seed1",
        "corpus": "results/smollm2/corpus.npz", "store": "results/smollm2/stores/blocks.6.hook_out.h5",
    }
    opts = default.causal_options("smollm2")
    assert opts["kind"] == "language" and opts["exclude_positions"] == [0] and opts["source"]["kind"] == "smollm2"
    assert default.causal_options("modular")["kind"] == "modular"
    assert sorted(default.causal_inputs(SimpleNamespace(exp="modular", hook="blocks.0.hook_mlp_out", variant="topk-w512-k16",
                                                        a="0", b="1"))) == ["a", "b", "model"]
    assert "results/smollm2/downstream.json" in default.downstream_files("smollm2")
    # causal equivalence across the two modular models (comparisons.modular-model-seeds.causal)
    assert default.causal_across_files("modular-model-seeds") == ["results/comparisons/modular-model-seeds/causal.json"]
    assert default.causal_across_files("smollm2-widths") == [] and "results/comparisons/modular-model-seeds/causal.json" in targets
    assert default.causal_across_inputs(SimpleNamespace(cmp="modular-model-seeds")) == {
        "model_a": "results/modular/model", "sae_a": "results/modular/saes/blocks.0.hook_mlp_out/topk-w512-k16/seed0",
        "model_b": "results/modular-s1/model", "sae_b": "results/modular-s1/saes/blocks.0.hook_mlp_out/topk-w512-k16/seed0",
    }
    assert default.causal_across_options("modular-model-seeds")["hooks"] == ["blocks.0.hook_mlp_out"] * 2
    assert "causal" not in default.comparison_options("modular-model-seeds")  # not an option of compare_by_activations


def test_causal_blocks_are_checked_at_start_up():
    raw = copy.deepcopy(TINY)
    raw["experiments"]["toy"]["causal"] = {"variants": ["topk-w12-k2"]}
    p = plan_of(raw)
    with pytest.raises(SaesimError, match=r"^experiments\.toy\.causal: needs a modular-addition or language-model experiment"):
        p.check()


def test_a_broken_store_link_stops_the_start_up_check(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny.check()
    store = tmp_path / tiny.store("toy", "toy")
    store.parent.mkdir(parents=True)
    os.symlink(tmp_path / "gone.h5", store)
    with pytest.raises(SaesimError, match="activation store"):
        tiny.check()


def test_rule_names_logs_gpu_and_wildcard_constraints(tiny):
    assert planning.rule_name("train_saes", "modular-s1") == "train_saes_modular_s1"
    assert layout.log("train_saes", "exp", exp="toy") == "results/logs/train_saes/toy.log"
    assert layout.log("compare_seed_pair", "pair") == "results/logs/compare_seed_pair/{exp}/{hook}/{variant}/seed{a}-seed{b}.log"
    assert layout.log("train_saes", "variant", exp="toy") == "results/logs/train_saes/toy/{hook}/{variant}.log"
    with pytest.raises(ValueError, match="unknown log key 'nope'"):
        layout.log("x", "nope")
    assert planning.uses_gpu("cpu") is False and planning.uses_gpu("cuda") is True
    assert tiny.gpu == 0  # TINY runs on cpu
    assert tiny.experiments_where(store_rule="toy") == "toy"
    assert tiny.experiments_where(language_model=True) == planning.NO_MATCH


def test_per_latent_reads_real_then_null_saes_and_no_null_with_one_null_seed(tiny):
    saes = tiny.per_latent_saes("toy")
    assert [(s["role"], s["variant"], s["seed"]) for s in saes] == [
        (role, v, seed) for role in ("real", "null") for v in TOY_VARIANTS for seed in (0, 1)
    ]
    null = saes[6]
    assert null["path"] == "results/toy/null/saes/toy/topk-w12-k2/seed0" and null["store"] == "results/toy/null/stores/toy.h5"
    assert null["identity"]["role"] == "null" and null["spec"] == tiny.sae_spec("toy", "topk-w12-k2", 0)
    one_null_seed = plan_of(TINY)  # the schema asks for two null seeds; the plan still copes with one
    one_null_seed.experiments["toy"]["null"]["seeds"] = [0]
    assert {s["role"] for s in one_null_seed.per_latent_saes("toy")} == {"real"}


def test_a_ground_truth_experiment_without_a_k_sparse_variant_stops_at_start_up():
    raw = copy.deepcopy(TINY)
    raw["experiments"]["toy"]["sae"]["variants"] = [{"architecture": "standard", "width": 12, "l1_coefficient": [0.05]}]
    with pytest.raises(SaesimError, match=r"^experiments\.toy: the latent x true-feature heatmap needs a k-sparse SAE variant$"):
        plan_of(raw).check()
