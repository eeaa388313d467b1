"""Bad input refused up front with one line naming the key or file (issue 18, items 3-5).

Most cases call the library directly (fast); the few whose message only a Snakemake run
shows (YAML syntax, the DAG build, the device check before the first job) run Snakemake
on a tiny copy of the workflow, each stopping before any job.
"""

from __future__ import annotations

import copy
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file

from saesim.workflow.config import validate_config
from saesim.errors import SaesimError
from workflow_helpers import SMALL, copy_workflow

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
INT64_MAX = 2**63 - 1


@pytest.fixture
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def exp(cfg, name="toy"):
    return cfg["experiments"][name]


def refused(cfg, *needles):
    with pytest.raises(SaesimError) as info:
        validate_config(cfg, SCHEMA)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# -------------------------------------------------------------------------- item 3: NaN / inf


@pytest.mark.parametrize(
    "mutate,key",
    [
        (lambda c: exp(c)["sae"]["training"].update(lr=float("nan")), "experiments.toy.sae.training.lr: nan"),
        (lambda c: exp(c, "modular")["sae"]["variants"][1].update(l1_coefficient=[float("inf")]),
         "experiments.modular.sae.variants[1].l1_coefficient[0]: inf"),
        (lambda c: exp(c)["sae"]["variants"][0].update(k=[4, float("nan")]), "experiments.toy.sae.variants[0].k[1]: nan"),
        (lambda c: exp(c)["source"].update(model={"bias": float("nan")}), "experiments.toy.source.model.bias: nan"),
        (lambda c: exp(c, "modular")["source"].update(betas=[0.9, float("-inf")]),
         "experiments.modular.source.betas[1]: -inf"),
        (lambda c: c["comparisons"]["smollm2-widths"].update(min_freq=float("inf")),
         "comparisons.smollm2-widths.min_freq: inf"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_key(default_config, mutate, key):
    mutate(default_config)
    refused(default_config, key, "not a finite number")


def test_nan_from_yaml_is_refused(default_config):
    """``.nan`` / ``.inf`` as a user writes them in YAML."""
    text = (ROOT / "config.yaml").read_text().replace("lr: 0.01", "lr: .nan", 1)
    refused(yaml.safe_load(text), "experiments.toy.sae.training.lr: nan is not a finite number")
    text = (ROOT / "config.yaml").read_text().replace("k: [4, 8, 11, 16, 24]", "k: [4, .inf]", 1)
    refused(yaml.safe_load(text), "experiments.toy.sae.variants[0].k[1]: inf is not a finite number")


# -------------------------------------------------------------------------- item 4: refused up front


@pytest.mark.parametrize(
    "mutate,key",
    [
        (lambda c, v: exp(c)["sae"].update(seeds=[0, v]), "experiments.toy.sae.seeds[1]"),
        (lambda c, v: exp(c)["sae"].update(fixed_seed=v), "experiments.toy.sae.fixed_seed"),
        (lambda c, v: exp(c)["source"].update(model={"seed": v}), "experiments.toy.source.model.seed"),
        (lambda c, v: exp(c, "modular")["source"].update(seed=v), "experiments.modular.source.seed"),
        (lambda c, v: c["comparisons"]["smollm2-widths"]["a"].update(seed=v), "comparisons.smollm2-widths.a.seed"),
    ],
)
def test_seeds_beyond_int64_are_refused(default_config, mutate, key):
    ok = copy.deepcopy(default_config)
    mutate(ok, INT64_MAX)
    if "comparisons" in key:  # a comparison's seed must also be one of the experiment's seeds
        exp(ok, "smollm2")["sae"]["seeds"].append(INT64_MAX)
    validate_config(ok, SCHEMA)  # the largest int64 is a seed
    mutate(default_config, INT64_MAX + 1)
    refused(default_config, key, str(INT64_MAX + 1), "maximum")


def test_training_samples_below_batch_size_is_refused(default_config):
    exp(default_config)["sae"]["training"].update(training_samples=1000, batch_size=1024)
    refused(default_config, "experiments.toy.sae.training.training_samples: 1000", "batch_size=1024")


@pytest.mark.parametrize("name,n_rows", [("toy", 8192), ("modular", 4000)])
def test_eval_rows_not_below_the_store_rows_is_refused(default_config, name, n_rows):
    exp(default_config, name)["store"]["n_rows"] = n_rows
    refused(default_config, f"experiments.{name}.sae.training.eval_rows", f"{n_rows} rows (store.n_rows)")


def test_modular_hook_the_model_lacks_is_refused_listing_the_valid_ones(default_config):
    exp(default_config, "modular")["hooks"] = ["blocks.0.hook_resid_post", "blocks.1.hook_mlp_out"]
    msg = refused(default_config, "experiments.modular.hooks: 'blocks.1.hook_mlp_out'", "1-layer")
    assert "blocks.0.hook_mlp_out" in msg and "blocks.0.mlp.hook_post" in msg
    exp(default_config, "modular")["hooks"] = ["blocks.0.attn.hook_z"]  # one vector per head: no store
    refused(default_config, "'blocks.0.attn.hook_z'")
    exp(default_config, "modular")["hooks"] = ["blocks.1.hook_mlp_out"]
    exp(default_config, "modular")["source"]["n_layers"] = 2
    # the cross-model causal comparison names blocks.0.hook_mlp_out, which modular no longer trains at
    refused(default_config, "comparisons.modular-model-seeds.causal.hooks: 'blocks.0.hook_mlp_out'")
    default_config["comparisons"]["modular-model-seeds"].pop("causal")
    validate_config(default_config, SCHEMA)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_modular_store_hook_names_are_the_models(n_layers):
    """The names validation checks against, known without TransformerLens, are exactly the
    hooks an untrained model fires with one vector per position."""
    import torch

    from saesim.sources.modular import ModularConfig, all_inputs, build_model, store_hook_names

    model = build_model(ModularConfig(p=7, n_layers=n_layers, d_model=16, n_heads=2, d_head=8, d_mlp=32))
    _, cache = model.run_with_cache(torch.from_numpy(all_inputs(7)[:4]))
    fired = [name for name in model.hook_dict if name in cache and cache[name].ndim == 3]
    assert sorted(store_hook_names(n_layers)) == sorted(fired)


def test_device_cuda_without_cuda_is_refused(monkeypatch):
    import torch

    from saesim.workflow.config import check_device_available

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SaesimError, match=r"^config: device: 'cuda', but torch sees no CUDA device") as info:
        check_device_available("cuda")
    assert "\n" not in str(info.value)
    for device in ("cpu", "auto"):
        check_device_available(device)


# -------------------------------------------------------------------------- item 5: one line, not a traceback


def test_missing_training_block_gets_the_schema_defaults(default_config):
    del exp(default_config)["sae"]["training"]
    training = exp(validate_config(default_config, SCHEMA))["sae"]["training"]
    schema = yaml.safe_load(SCHEMA.read_text())["$defs"]["training"]["properties"]
    assert training == {k: v["default"] for k, v in schema.items()}


def test_duplicate_variant_is_refused_at_validation(default_config):
    exp(default_config)["sae"]["variants"].append({"architecture": "topk", "width": 50, "k": [8]})
    refused(default_config, "experiments.toy.sae.variants: duplicate SAE variants ['topk-w50-k8']")


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    from saesim.workflow.config import check_yaml_syntax

    bad = tmp_path / "bad.yaml"
    bad.write_text("device: cpu\nexperiments:\n  toy: {source: {kind: toy}\n  other: 1\n")
    with pytest.raises(SaesimError) as info:
        check_yaml_syntax(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}, line 4, column 3: YAML syntax error: expected ',' or '}}'") and "\n" not in msg
    assert msg.endswith("(while parsing a flow mapping started at line 3, column 8)")
    good = tmp_path / "good.json"
    good.write_text('{\n\t"device": "cpu"\n}\n')  # JSON (tabs included) is read as Snakemake reads it
    check_yaml_syntax(good)


def write_sae_lens(folder, W_dec, cfg):
    folder.mkdir(parents=True, exist_ok=True)
    W_dec = np.ascontiguousarray(W_dec, dtype=np.float32)
    save_file({"W_dec": W_dec, "W_enc": np.ascontiguousarray(W_dec.T), "b_dec": np.zeros(W_dec.shape[1], np.float32)},
              str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("fmt", ["sae_lens", "sparsify"])
def test_infinite_sizes_in_cfg_json_are_one_line(tmp_path, fmt):
    from saesim.saes.loading import load_sae_weights

    W = np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)
    if fmt == "sae_lens":
        folder = write_sae_lens(tmp_path / "sae", W, {"d_in": 8, "d_sae": float("inf")})
        key = "d_sae"
    else:
        folder = tmp_path / "sae"
        folder.mkdir()
        save_file({"W_dec": W, "encoder.weight": W.copy(), "b_dec": np.zeros(8, np.float32)}, str(folder / "sae.safetensors"))
        (folder / "cfg.json").write_text(json.dumps({"d_in": 8, "num_latents": float("inf"), "expansion_factor": 4}))
        key = "num_latents"
    assert "Infinity" in (folder / "cfg.json").read_text()
    with pytest.raises(SaesimError) as info:
        load_sae_weights(folder)
    assert str(info.value) == f"{folder / 'cfg.json'}: {key} should be an integer, got inf"


def test_empty_dictionary_names_the_file(tmp_path, capsys):
    from saesim.cli import main

    rng = np.random.default_rng(0)
    good = write_sae_lens(tmp_path / "good", rng.standard_normal((16, 8)), {"d_in": 8, "d_sae": 16})
    empty = write_sae_lens(tmp_path / "empty", np.zeros((0, 8)), {"d_in": 8, "d_sae": 0})
    assert main(["compare", str(good), str(empty)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert f"{empty / 'sae_weights.safetensors'}: empty dictionary" in err


def test_compare_negative_seed_is_one_line(tmp_path, capsys):
    from saesim.cli import main

    rng = np.random.default_rng(0)
    a = write_sae_lens(tmp_path / "a", rng.standard_normal((16, 8)), {"d_in": 8, "d_sae": 16})
    assert main(["compare", str(a), str(a), "--seed", "-1"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "saesim compare: error: --seed must be >= 0, got -1"


def test_seed_pair_dimension_mismatch_names_both_files(tmp_path, capfd):
    """The rule script's one line names both SAE folders (the library's check names none)."""
    rng = np.random.default_rng(0)
    a = write_sae_lens(tmp_path / "seed0", rng.standard_normal((16, 8)), {"d_in": 8, "d_sae": 16})
    b = write_sae_lens(tmp_path / "seed1", rng.standard_normal((16, 12)), {"d_in": 12, "d_sae": 16})
    smk = SimpleNamespace(
        input=SimpleNamespace(a=str(a), b=str(b)), output=[str(tmp_path / "pair.json")], log=[str(tmp_path / "job.log")],
        params=SimpleNamespace(memory_budget_mb=64), rule="compare_seed_pair", resources={}, scriptdir=str(ROOT / "scripts"),
    )
    with pytest.raises(SystemExit):
        runpy.run_path(str(ROOT / "scripts" / "compare_seed_pair.py"), init_globals={"snakemake": smk})
    line = capfd.readouterr().err.strip()
    assert line.startswith("saesim error in rule compare_seed_pair: ") and "\n" not in line
    assert str(a) in line and str(b) in line and "d_in=12" in line
    assert not (tmp_path / "pair.json").exists()


@pytest.mark.parametrize("value", [0.0, 0.1])
def test_zero_variance_store_is_one_line_naming_the_store(tmp_path, value):
    import torch

    from saesim.stores.activation_store import StoreWriter, open_store
    from saesim.saes.evaluation import evaluate_sae

    path = tmp_path / "flat.h5"
    with StoreWriter(path, 4) as w:
        w.append(np.full((300, 4), value))
    W = torch.eye(4)
    sae = SimpleNamespace(cfg=SimpleNamespace(d_sae=4), device="cpu", encode=lambda x: x @ W, decode=lambda z: z @ W)
    with open_store(path) as store:
        with pytest.raises(SaesimError) as info:
            evaluate_sae(sae, store, np.ones(300, dtype=bool))
    msg = str(info.value)
    assert msg.startswith(f"{path}: the 300 evaluation rows have zero variance") and "\n" not in msg


# -------------------------------------------------------------------------- through Snakemake


def small_config(**training):
    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["sae"]["training"].update(training)
    return cfg


def without_training():
    cfg = copy.deepcopy(SMALL)
    del cfg["experiments"]["toy"]["sae"]["training"]
    cfg["experiments"]["toy"]["store"]["n_rows"] = 60000  # above the default eval_rows
    return cfg


def duplicate_variant():
    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["sae"]["variants"].append({"architecture": "topk", "width": 12, "k": [2.0]})
    return cfg


CASES = {
    # name: (config.yaml text, extra snakemake args, environment, expected line or None for success)
    "yaml-syntax": (yaml.safe_dump(SMALL).replace("device: cpu", "device: [cpu"), ["-n"], {},
                    "Invalid configuration: config.yaml, line 3, column 12: YAML syntax error: expected ',' or ']'"),
    "nan": (yaml.safe_dump(SMALL).replace("lr: 0.01", "lr: .nan"), ["-n"], {},
            "Invalid configuration: config: experiments.toy.sae.training.lr: nan is not a finite number"),
    "duplicate-variant": (yaml.safe_dump(duplicate_variant()), ["-n"], {},
                          "Invalid configuration: config: experiments.toy.sae.variants: duplicate SAE variants ['topk-w12-k2']"),
    "no-training-block": (yaml.safe_dump(without_training()), ["-n"], {}, None),
    # a real run (a dry run starts no job, so checks nothing): refused before the first job
    "cuda-without-cuda": (yaml.safe_dump({**SMALL, "device": "cuda"}), [], {"CUDA_VISIBLE_DEVICES": ""},
                          "Invalid configuration: config: device: 'cuda', but torch sees no CUDA device"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_snakemake_stops_before_any_job_with_one_line(tmp_path, case):
    text, args, env, expected = CASES[case]
    work = copy_workflow(tmp_path / "wf", SMALL)
    (work / "config.yaml").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=work, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    out = proc.stdout + proc.stderr
    if expected is None:
        assert proc.returncode == 0, out[-3000:]
        assert "train_saes_toy" in out
        return
    assert proc.returncode != 0
    assert "Traceback" not in out
    assert sum(expected in line for line in out.splitlines()) == 1, out[-3000:]
    assert not (work / "results").exists()
