"""Frozen-dictionary variants (freeze: decoder): the decoder stays at its initialisation."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from saesim.workflow.config import expand_variants, validate_config
from saesim.errors import SaesimError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def test_a_frozen_variant_has_its_own_id_and_spec():
    from saesim.workflow import planning

    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["experiments"]["toy"]["sae"]["variants"].append({"architecture": "topk", "width": 50, "k": [11], "freeze": "decoder"})
    exp = validate_config(raw, SCHEMA)["experiments"]["toy"]
    ids = [v.id for v in expand_variants(exp)]
    assert "topk-w50-k11" in ids and "topk-w50-k11-frozendec" in ids
    assert planning.sae_spec(exp, "topk-w50-k11-frozendec", 0, 1, "cpu")["freeze"] == "decoder"
    assert "freeze" not in planning.sae_spec(exp, "topk-w50-k11", 0, 1, "cpu")
    raw["experiments"]["toy"]["sae"]["variants"][-1]["freeze"] = "encoder"
    with pytest.raises(SaesimError, match=r"variants\[2\]\.freeze: 'encoder' is not allowed; allowed values: decoder"):
        validate_config(raw, SCHEMA)


pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    from saesim.sources.synthetic import write_synthetic_store

    path = tmp_path_factory.mktemp("store") / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2},
             "std_firing_magnitudes": 0.15, "bias": False, "seed": 0}
    write_synthetic_store(path, model, 12_000, chunk_rows=2048, progress=False)
    return path


@pytest.mark.parametrize("arch,b_dec_init", [("topk", "mean"), ("batchtopk", "zeros")])
def test_frozen_decoder_equals_its_initialisation_bit_for_bit(toy_store, tmp_path, arch, b_dec_init):
    from safetensors.numpy import load_file

    from saesim.saes.training import SAESpec, build_training_sae, train_sae

    def spec(freeze):
        return SAESpec(arch, 12, 3, 5, 5, lr=1e-2, training_samples=6000, batch_size=256, eval_rows=2000, b_dec_init=b_dec_init, freeze=freeze)

    last = {}

    def grab(fraction, samples, sae):  # the training SAE after its last step
        last.update({k: v.detach().clone() for k, v in sae.state_dict().items()})

    frozen = train_sae(toy_store, spec("decoder"), tmp_path / "frozen", snapshot_fractions=[1.0], on_snapshot=grab)
    trained = train_sae(toy_store, spec(None), tmp_path / "trained")
    init_sae = build_training_sae(spec("decoder"), 16)
    init = {k: v.detach().numpy() for k, v in init_sae.state_dict().items()}
    # the training SAE's decoder after the last step is its initialisation, bit for bit
    assert last["W_dec"].numpy().dtype == init["W_dec"].dtype and last["W_dec"].numpy().tobytes() == init["W_dec"].tobytes()
    assert not np.array_equal(last["W_enc"].numpy(), init["W_enc"])  # the encoder was trained
    # and the published decoder is the initialised SAE's, saved the same way (sae-lens folds
    # TopK decoder norms into the encoder when saving for inference)
    init_sae.save_inference_model(str(tmp_path / "init"))
    w = load_file(str(tmp_path / "frozen" / "sae_weights.safetensors"))
    i = load_file(str(tmp_path / "init" / "sae_weights.safetensors"))
    t = load_file(str(tmp_path / "trained" / "sae_weights.safetensors"))
    assert w["W_dec"].tobytes() == i["W_dec"].tobytes()
    assert not np.array_equal(t["W_dec"], w["W_dec"])  # the trained twin's decoder moved
    assert frozen["spec"]["freeze"] == "decoder" and "freeze" not in trained["spec"]
    assert 0 < frozen["explained_variance"] < trained["explained_variance"]
    with pytest.raises(SaesimError, match="freeze must be 'decoder'"):
        train_sae(toy_store, spec("encoder"), tmp_path / "bad")
