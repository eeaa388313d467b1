"""The architecture registry: the schema, config validation, training and figures agree with it,
and a newly registered architecture works end to end (config, DAG, figure choice)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from saesim.saes import architectures
from saesim.saes.architectures import ARCHITECTURES, Architecture, figure_choice
from saesim.errors import SaesimError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def test_schema_enum_is_the_registry():
    variant = SCHEMA["$defs"]["variant"]
    assert variant["properties"]["architecture"]["enum"] == list(ARCHITECTURES)


def test_schema_requires_each_architectures_own_sparsity_key():
    required = {}
    for part in SCHEMA["$defs"]["variant"]["allOf"]:
        cond = part["if"]["properties"]["architecture"]
        names = cond.get("enum") or [cond["const"]]
        for name in names:
            required[name] = part["then"]["required"]
    assert required == {a.name: [a.sparsity_key] for a in ARCHITECTURES.values()}


def test_every_architecture_has_a_label_and_its_own_colour():
    from saesim.report.figures import ARCHITECTURE_COLORS, ARCHITECTURE_LABELS

    assert set(ARCHITECTURE_COLORS) == set(ARCHITECTURE_LABELS) == set(ARCHITECTURES)
    assert len(set(ARCHITECTURE_COLORS.values())) == len(ARCHITECTURES)
    assert ARCHITECTURE_LABELS["standard"] == "ReLU + L1" and ARCHITECTURE_COLORS["topk"] == "#DD8452"


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_builds_its_sae_lens_training_sae(name):
    import sae_lens  # noqa: F401 (import cost once)

    from saesim.saes.training import SAESpec, build_training_sae

    arch = ARCHITECTURES[name]
    sparsity = 3 if arch.sparsity_key == "k" else 0.05
    sae = build_training_sae(SAESpec(name, 16, sparsity, 0, 0, sparsity_warm_up_steps=7, matryoshka_widths=(4,)), 8)
    assert type(sae).__name__ == SAE_LENS_TRAINING_CLASSES[name]
    assert tuple(sae.W_dec.shape) == (16, 8)
    value = getattr(sae.cfg, arch.sparsity_key)
    assert value == sparsity and isinstance(value, int) == arch.integer_k
    # the architecture sae-lens saves it as, whose numpy activation saesim.analysis.ground_truth uses
    assert sae.cfg.get_inference_config_class().architecture() == arch.saved_architecture


#: sae-lens's training SAE class of each architecture (known answers, not read from the registry)
SAE_LENS_TRAINING_CLASSES = {
    "standard": "StandardTrainingSAE",
    "topk": "TopKTrainingSAE",
    "batchtopk": "BatchTopKTrainingSAE",
    "jumprelu": "JumpReLUTrainingSAE",
    "matryoshka_batchtopk": "MatryoshkaBatchTopKTrainingSAE",
}


def test_saved_architectures_and_their_numpy_activations():
    assert architectures.saved_architectures() == ["standard", "topk", "jumprelu"]
    assert architectures.saved_activation("jumprelu") is ARCHITECTURES["batchtopk"].activation
    with pytest.raises(SaesimError, match=r"^no numpy encoder for sae-lens 'gated' SAEs; readable: standard, topk, jumprelu$"):
        architectures.saved_activation("gated")


def test_architecture_specific_sae_lens_arguments():
    """Known answers for the arguments only some architectures take."""
    from saesim.saes.training import SAESpec, build_training_sae

    jump = build_training_sae(SAESpec("jumprelu", 16, 0.05, 0, 0, sparsity_warm_up_steps=7), 8).cfg
    assert (jump.l0_warm_up_steps, jump.jumprelu_init_threshold, jump.jumprelu_bandwidth) == (7, 0.01, 0.05)
    assert build_training_sae(SAESpec("standard", 16, 0.05, 0, 0, sparsity_warm_up_steps=7), 8).cfg.l1_warm_up_steps == 7
    assert build_training_sae(SAESpec("matryoshka_batchtopk", 16, 3, 0, 0), 8).cfg.matryoshka_widths == [2, 4, 8, 16]
    assert build_training_sae(SAESpec("matryoshka_batchtopk", 16, 3, 0, 0, matryoshka_widths=(4,)), 8).cfg.matryoshka_widths == [4, 16]


def test_unknown_architecture_and_double_registration_are_one_line_errors():
    with pytest.raises(SaesimError, match=r"^unknown SAE architecture 'gated'; allowed: standard, topk, batchtopk, jumprelu, matryoshka_batchtopk$"):
        architectures.get("gated")
    with pytest.raises(SaesimError, match="registered twice"):
        architectures.register(ARCHITECTURES["topk"])


def test_figure_choice_most_variants_then_rank_then_name():
    assert figure_choice({"topk": 5, "batchtopk": 2}) == "topk"
    assert figure_choice({"topk": 2, "batchtopk": 2, "matryoshka_batchtopk": 2}) == "batchtopk"
    assert figure_choice({"matryoshka_batchtopk": 1, "topk": 1}) == "topk"
    # an architecture the ranking does not know (the old hand-written order list crashed here)
    assert figure_choice({"newk": 3, "topk": 1}) == "newk"
    assert figure_choice({"newk": 1, "topk": 1}) == "topk"
    assert figure_choice({"zk": 1, "newk": 1}) == "newk"


def test_config_validation_reads_the_registry(monkeypatch):
    from saesim.workflow.config import expand_variants, validate_config

    schema = ROOT / "workflow/schemas/config.schema.yaml"
    cfg = {
        "experiments": {
            "toy": {
                "source": {"kind": "toy", "model": {"num_features": 4, "hidden_dim": 8, "seed": 0}},
                "sae": {"seeds": [0, 1], "variants": [{"architecture": "topk", "width": 8, "k": [2.5]}]},
            }
        }
    }
    with pytest.raises(SaesimError, match=r"variants\[0\]\.k: topk needs whole numbers, got 2\.5"):
        validate_config(cfg, schema)
    cfg["experiments"]["toy"]["sae"]["variants"][0]["architecture"] = "batchtopk"
    ok = validate_config(cfg, schema)
    assert [v.id for v in expand_variants(ok["experiments"]["toy"])] == ["batchtopk-w8-k2.5"]
    # a registry entry decides: make batchtopk integer-only and the same config is refused
    monkeypatch.setitem(ARCHITECTURES, "batchtopk", Architecture("batchtopk", "k", "B", "#000000", architectures._jumprelu, integer_k=True))
    with pytest.raises(SaesimError, match="batchtopk needs whole numbers"):
        validate_config(cfg, schema)


NEW_ARCH = '''

register(Architecture("wtopk", "k", "Wide TopK", "#123456", _topk, sae_lens_name="topk", integer_k=True))
'''


def test_a_new_k_sparse_architecture_needs_one_registration_and_the_schema_enum(tmp_path):
    """Adding an architecture: one register() call and its name in the schema. A toy experiment
    whose k-sparse variants are all of the new one builds its DAG (the latent x truth figure
    picks it; the hand-written order list raised ValueError: 'wtopk' is not in list)."""
    from workflow_helpers import SMALL, copy_workflow

    cfg = json.loads(json.dumps(SMALL))
    cfg["experiments"]["toy"]["sae"]["variants"] = [
        {"architecture": "wtopk", "width": 12, "k": [2, 3]},
        {"architecture": "topk", "width": 12, "k": [2]},
    ]
    work = copy_workflow(tmp_path / "wf", cfg)
    arch_py = work / "src/saesim/saes/architectures.py"
    arch_py.write_text(arch_py.read_text() + NEW_ARCH)
    schema = work / "workflow/schemas/config.schema.yaml"
    text = schema.read_text()
    text = text.replace("enum: [standard, topk, batchtopk, jumprelu, matryoshka_batchtopk]", "enum: [standard, topk, batchtopk, jumprelu, matryoshka_batchtopk, wtopk]")
    text = text.replace("enum: [topk, batchtopk, matryoshka_batchtopk]}}}", "enum: [topk, batchtopk, matryoshka_batchtopk, wtopk]}}}")
    assert text.count("wtopk") == 2
    schema.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/figures/toy_latent_vs_truth.pdf"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    heatmap_inputs = re.search(r"rule plot_latent_vs_truth:\n\s+input: (.*)\n", out).group(1)
    assert "saes/toy/wtopk-w12-k2/seed0" in heatmap_inputs and "saes/toy/wtopk-w12-k3/seed0" in heatmap_inputs
    assert "topk-w12-k2/seed0" not in heatmap_inputs.replace("wtopk", "")
