import copy
from pathlib import Path

import pytest
import yaml

from saesim.workflow.config import expand_variants, expected_l0, seed_pair, validate_config
from saesim.errors import SaesimError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def toy(cfg):
    return cfg["experiments"]["toy"]


def test_default_config_is_valid_and_gets_defaults(default_config):
    cfg = validate_config(default_config, SCHEMA)
    assert cfg["device"] == "auto"
    assert toy(cfg)["source"]["model"]["hidden_dim"] == 100  # filled from the chanin preset
    assert expected_l0(toy(cfg)["source"]) == pytest.approx(11.0)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: toy(c)["sae"]["variants"][0].update(architecture="gated-ish"),
         r"experiments\.toy\.sae\.variants\[0\]\.architecture: 'gated-ish' is not allowed; allowed values: standard, topk, batchtopk, jumprelu, matryoshka_batchtopk"),
        (lambda c: toy(c)["sae"]["variants"][0].update(k=[4, 50]),
         r"experiments\.toy\.sae\.variants\[0\]\.k: k=50 must be smaller than width=50"),
        (lambda c: c["experiments"]["modular"]["sae"]["variants"][1].update(l1_coefficient=[-0.1]),
         r"experiments\.modular\.sae\.variants\[1\]\.l1_coefficient\[0\]: -0\.1 is less than the minimum of 0"),
        (lambda c: toy(c)["sae"].pop("seeds"),
         r"experiments\.toy\.sae: 'seeds' is a required property"),
        (lambda c: toy(c)["sae"]["training"].update(batch_size="big"),
         r"experiments\.toy\.sae\.training\.batch_size: 'big' has the wrong type; expected integer"),
        (lambda c: toy(c)["sae"]["training"].update(learning_rate=0.1),
         r"experiments\.toy\.sae\.training: unknown key\(s\) learning_rate; allowed keys: .*lr"),
        (lambda c: toy(c)["sae"]["variants"][0].pop("k"),
         r"experiments\.toy\.sae\.variants\[0\]: 'k' is a required property"),
        (lambda c: c["experiments"]["modular"]["sae"]["variants"][1].update(k=[3]),
         r"variants\[1\]: standard takes l1_coefficient, not k"),
        (lambda c: c.update(device="tpu"), r"device: 'tpu' is not allowed; allowed values: auto, cpu, cuda"),
        (lambda c: toy(c)["source"].update(n_features=500), r"experiments\.toy\.source: unknown key\(s\) n_features; allowed keys: kind, model, preset"),
        (lambda c: toy(c)["source"].update(preset="channi"), r"experiments\.toy\.source\.preset: unknown preset 'channi'; presets: chanin, hier, song, synthsaebench"),
        (lambda c: toy(c)["source"].update(model={"firing_probability": {"generator_name": "linear", "max_prob": 0.1, "min_prob": 0.3}}),
         r"experiments\.toy\.source\.model\.firing_probability: min_prob=0\.3 must be <= max_prob=0\.1"),
        (lambda c: toy(c)["source"].update(model={"hierarchy": {"total_root_nodes": 4, "branching_factor": 1}}),
         r"experiments\.toy\.source\.model\.hierarchy\.branching_factor: 1 is less than the minimum of 2"),
        (lambda c: toy(c)["source"].update(model={"correlation": {"rank": 30, "correlation_scale": 0.3}}),
         r"experiments\.toy\.source\.model\.correlation: rank \* correlation_scale\^2 = 2\.7 must be < 1"),
        (lambda c: toy(c)["source"].update(model={"mean_firing_magnitudes": {"generator_name": "linear", "start": 5.0}}),
         r"experiments\.toy\.source\.model\.mean_firing_magnitudes: 'end' is a required property"),
        (lambda c: c["experiments"]["smollm2"]["sae"]["variants"][1].update(hooks=["blocks.7.hook_out"]),
         r"experiments\.smollm2\.sae\.variants\[1\]\.hooks: 'blocks\.7\.hook_out' is not a hook of smollm2; hooks: blocks\.6\.hook_out, blocks\.15\.hook_out"),
        (lambda c: c["comparisons"]["smollm2-widths"]["b"].update(hooks=["blocks.15.hook_out"]),
         r"comparisons\.smollm2-widths\.b\.hooks: 'blocks\.15\.hook_out' is not a hook smollm2 trains topk-w2304-k64 at; hooks: blocks\.6\.hook_out"),
        # causal equivalence across models: the same inputs (p), modular models, trained hooks
        (lambda c: c["experiments"]["modular-s1"]["source"].update(p=97),
         r"comparisons\.modular-model-seeds\.causal: modular has p 113 and modular-s1 p 97; both models need the same inputs"),
        (lambda c: c["comparisons"]["modular-model-seeds"]["causal"].update(hooks=["blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"]),
         r"comparisons\.modular-model-seeds\.causal\.hooks: 'blocks\.0\.hook_resid_post' is not a hook modular-s1 trains topk-w512-k16 at"),
        (lambda c: c["comparisons"]["smollm2-widths"].update(causal={"hooks": ["blocks.6.hook_out"] * 2}),
         r"comparisons\.smollm2-widths\.causal: needs two modular-addition experiments; smollm2 is smollm2"),
        (lambda c: c["comparisons"]["modular-model-seeds"]["causal"].update(hooks=["blocks.0.hook_mlp_out"]),
         r"comparisons\.modular-model-seeds\.causal\.hooks: .*too short"),
    ],
)
def test_bad_config_gives_one_message_naming_the_key(default_config, mutate, message):
    cfg = copy.deepcopy(default_config)
    mutate(cfg)
    with pytest.raises(SaesimError, match=message) as info:
        validate_config(cfg, SCHEMA)
    assert "\n" not in str(info.value)


def test_variants_expand_with_stable_ids(default_config):
    cfg = validate_config(default_config, SCHEMA)
    ids = [v.id for v in expand_variants(toy(cfg))]
    assert ids == ["topk-w50-k4", "topk-w50-k8", "topk-w50-k11", "topk-w50-k16", "topk-w50-k24",
                   "batchtopk-w50-k11", "batchtopk-w50-k24"]
    assert [v.id for v in expand_variants(cfg["experiments"]["modular"])] == ["topk-w512-k16", "standard-w512-l1c3"]


def test_seed_modes(default_config):
    exp = toy(validate_config(default_config, SCHEMA))
    assert seed_pair(exp, 3) == (3, 3)
    exp["sae"].update(seed_mode="init_only", fixed_seed=7)
    assert seed_pair(exp, 3) == (3, 7)
    exp["sae"]["seed_mode"] = "data_only"
    assert seed_pair(exp, 3) == (7, 3)


def test_variant_hooks_restrict_where_a_variant_is_trained(default_config):
    cfg = validate_config(default_config, SCHEMA)
    by_id = {v.id: v for v in expand_variants(cfg["experiments"]["smollm2"])}
    narrow, everywhere = by_id["topk-w2304-k64"], by_id["topk-w1152-k64"]
    assert narrow.hooks == ("blocks.6.hook_out",) and "hooks" not in dict(narrow.options)
    assert narrow.trained_at("blocks.6.hook_out") and not narrow.trained_at("blocks.15.hook_out")
    assert everywhere.hooks is None and everywhere.trained_at("blocks.15.hook_out")



def test_the_full_run_preset_is_the_default_made_larger():
    """config/presets/runs/full.yaml (the README's key results) validates, has every experiment,
    comparison and suite of the default, and is larger where the default was cut for its budget."""
    default = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()), SCHEMA)
    full = validate_config(yaml.safe_load((ROOT / "config" / "presets" / "runs" / "full.yaml").read_text()), SCHEMA)
    for key in ("experiments", "comparisons"):
        assert set(default[key]) == set(full[key])
    assert set(default["suites"]) < set(full["suites"])  # the k sweep's suite is the full run's only
    d_exp, f_exp = default["experiments"], full["experiments"]
    assert set(d_exp["modular"]["sae"]["seeds"]) < set(f_exp["modular"]["sae"]["seeds"])
    d_train, f_train = (e["smollm2"]["sae"]["training"]["training_samples"] for e in (d_exp, f_exp))
    assert d_train < f_train
    d_ks, f_ks = ({v.id for v in expand_variants(e["smollm2"])} for e in (d_exp, f_exp))
    assert d_ks < f_ks
