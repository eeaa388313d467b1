"""saesim.workflow.planning: hook/variant expansion, seed pairs, SAE specs and figure panels
on small configs (no Snakemake)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from saesim.workflow.config import validate_config
from saesim.errors import SaesimError
from saesim.workflow import planning

from workflow_helpers import TINY_SYNTHETIC_MODEL  # true L0 2.0

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def toy_exp(variants, hooks=None, **sae):
    exp = {
        "source": {"kind": "toy", "model": copy.deepcopy(TINY_SYNTHETIC_MODEL)},
        "sae": {"seeds": [0, 1], "variants": variants, **sae},
    }
    if hooks is not None:
        exp["hooks"] = hooks
    return exp


def validated(exp, name="x"):
    return validate_config({"device": "cpu", "experiments": {name: exp}}, SCHEMA)["experiments"][name]


def test_names_regex_matches_exactly_the_names_or_nothing():
    rx = planning.names_regex(["toy", "modular-s1"])
    assert re.fullmatch(rx, "toy") and re.fullmatch(rx, "modular-s1") and not re.fullmatch(rx, "modular")
    nothing = planning.names_regex([])
    assert nothing == planning.NO_MATCH
    assert not any(re.fullmatch(nothing, s) for s in ("", "x", "toy", "(?!x)x"))


def test_pairs_keep_order_and_seed_pairs_sort():
    assert planning.pairs(["b", "a", "c"]) == [("b", "a"), ("b", "c"), ("a", "c")]
    assert planning.seed_pairs([2, 0, 1]) == [(0, 1), (0, 2), (1, 2)]
    assert planning.seed_pairs([5]) == [] and planning.pairs([]) == []
    assert len(planning.seed_pairs(range(5))) == 10


def test_hook_variants_hooks_first_and_per_variant_hooks():
    exp = toy_exp(
        [{"architecture": "topk", "width": 8, "k": [2, 3], "hooks": ["h2"]},
         {"architecture": "standard", "width": 16, "l1_coefficient": [1.0]}],
        hooks=["h1", "h2"],
    )
    assert list(planning.variants(exp)) == ["topk-w8-k2", "topk-w8-k3", "standard-w16-l1c1"]
    assert planning.hook_variants(exp) == [
        ("h1", "standard-w16-l1c1"),
        ("h2", "topk-w8-k2"), ("h2", "topk-w8-k3"), ("h2", "standard-w16-l1c1"),
    ]
    assert planning.baseline_widths(exp) == {"h1": [16], "h2": [8, 16]}
    # a toy source has one hook, "toy"
    plain = toy_exp([{"architecture": "topk", "width": 8, "k": [2]}])
    assert planning.hooks(plain) == ["toy"] and planning.hook_variants(plain) == [("toy", "topk-w8-k2")]


def test_sae_spec_seed_modes_and_per_variant_options():
    exp = validated(toy_exp(
        [{"architecture": "topk", "width": 8, "k": [2], "lr": 0.5},
         {"architecture": "matryoshka_batchtopk", "width": 16, "k": [3], "matryoshka_widths": [4, 16]}],
        seed_mode="init_only", fixed_seed=7, training={"lr": 0.01, "training_samples": 5000},
    ))
    spec = planning.sae_spec(exp, "topk-w8-k2", "3", threads=2, device="cpu")
    assert (spec["architecture"], spec["width"], spec["sparsity"]) == ("topk", 8, 2.0)
    assert (spec["init_seed"], spec["data_seed"]) == (3, 7)  # init_only: the data seed is fixed
    assert spec["lr"] == 0.5 and spec["training_samples"] == 5000  # the variant's lr wins
    assert (spec["threads"], spec["device"]) == (2, "cpu")
    m = planning.sae_spec(exp, "matryoshka_batchtopk-w16-k3", 1, threads=1, device="cuda")
    assert m["matryoshka_widths"] == [4, 16] and m["lr"] == 0.01 and m["device"] == "cuda"
    # the config is not modified
    assert exp["sae"]["training"]["lr"] == 0.01


def test_figure_panels_per_source_kind():
    toy = validated(toy_exp([{"architecture": "topk", "width": 8, "k": [2]}]))
    assert planning.figure_names(toy) == [
        "stability_vs_l0", "seed_heatmap", "recovery_vs_l0", "latent_vs_truth", "pwmcc_vs_gtmcc", "coactivation",
    ]
    modular = {"source": {"kind": "modular"}, "sae": {"variants": []}}
    assert planning.figure_names(modular) == ["stability_vs_l0", "seed_heatmap", "grokking", "fourier_overlap", "coactivation"]
    conv = toy_exp([{"architecture": "topk", "width": 8, "k": [2]}])
    conv["convergence"] = {"enabled": True, "fractions": [0.5]}
    assert planning.figure_names(conv)[-1] == "convergence" and planning.has_convergence(conv)
    conv["convergence"]["enabled"] = False
    assert "convergence" not in planning.figure_names(conv)


def _heatmap(variants):
    return planning.truth_heatmap_variants(toy_exp(variants), "experiments.t")


def test_truth_heatmap_panels_below_nearest_above_the_true_l0():
    # true L0 2.0: k=1 below, k=2 nearest, k=5 above; topk has the most sparsities
    assert _heatmap([{"architecture": "topk", "width": 8, "k": [5, 1, 2, 3]},
                     {"architecture": "batchtopk", "width": 8, "k": [2]}]) == ["topk-w8-k1", "topk-w8-k2", "topk-w8-k5"]
    # coinciding panels collapse: nearest is the lowest
    assert _heatmap([{"architecture": "topk", "width": 8, "k": [2, 5]}]) == ["topk-w8-k2", "topk-w8-k5"]
    assert _heatmap([{"architecture": "topk", "width": 8, "k": [3]}]) == ["topk-w8-k3"]
    # a tie in sparsities: batchtopk (figure_rank 0) before topk
    assert _heatmap([{"architecture": "topk", "width": 8, "k": [1, 3]},
                     {"architecture": "batchtopk", "width": 8, "k": [2, 4]}]) == ["batchtopk-w8-k2", "batchtopk-w8-k4"]
    # other sparsity keys are ignored
    assert _heatmap([{"architecture": "standard", "width": 8, "l1_coefficient": [1.0, 2.0, 3.0]},
                     {"architecture": "topk", "width": 8, "k": [4]}]) == ["topk-w8-k4"]


def test_truth_heatmap_without_k_sparse_variant_is_one_line_naming_the_experiment():
    with pytest.raises(SaesimError, match=r"^experiments\.t: the latent x true-feature heatmap needs a k-sparse SAE variant$"):
        _heatmap([{"architecture": "standard", "width": 8, "l1_coefficient": [1.0]}])


def test_kinds_null_and_modular_model_config():
    assert planning.has_ground_truth({"source": {"kind": "toy"}})
    assert planning.is_modular({"source": {"kind": "modular"}})
    assert planning.is_language({"source": {"kind": "smollm2"}}) and not planning.is_language({"source": {"kind": "toy"}})
    assert planning.null_enabled({"source": {"kind": "toy"}, "null": {"enabled": True}})
    assert not planning.null_enabled({"source": {"kind": "toy"}, "null": {"enabled": False}})
    assert not planning.null_enabled({"source": {"kind": "saes"}})  # imported SAEs: no null block needed
    src = {"kind": "modular", "p": 113, "key_rel_threshold": 0.1, "epochs": 10}
    exp = {"source": src}
    assert planning.modular_model_config(exp, "cuda") == {"p": 113, "epochs": 10, "device": "cuda"}
    assert src["kind"] == "modular"  # not modified


def test_comparison_options_and_suite_members():
    cmp = {"a": {"experiment": "x"}, "b": {"experiment": "y"}, "max_rows": 10}
    assert planning.comparison_options(cmp) == {"max_rows": 10, "seed": 0}
    assert "a" in cmp  # not modified
    by_hook = {"axis": "hook", "variant": "topk-w8-k2"}
    by_width = {"axis": "width", "hook": "blocks.0.hook_out"}
    assert planning.suite_member_hook_variant(by_hook, "blocks.3.hook_out") == ("blocks.3.hook_out", "topk-w8-k2")
    assert planning.suite_member_hook_variant(by_width, "topk-w16-k2") == ("blocks.0.hook_out", "topk-w16-k2")
