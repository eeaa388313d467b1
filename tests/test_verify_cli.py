"""``saesim verify``: stores and SAE folders against their recorded hashes; all-zero decoders refused."""

import json

import h5py
import numpy as np
import pytest

from saesim.cli import main
from saesim.sources.synthetic import write_synthetic_store
from saesim.hashes import file_sha256
from test_compare_cli import assert_one_line_error, run, write_sae


@pytest.fixture
def artifacts(tmp_path):
    store = tmp_path / "toy.h5"
    write_synthetic_store(store, {"num_features": 8, "hidden_dim": 16, "bias": False, "seed": 0}, 3000, chunk_rows=1000, progress=False)
    rng = np.random.default_rng(0)
    sae = write_sae(tmp_path / "sae", rng.standard_normal((32, 16)), rng.standard_normal((16, 32)))
    weights = sae / "sae_weights.safetensors"
    (sae / "metrics.json").write_text(json.dumps({"weights_sha256": file_sha256(weights)}))
    return store, sae


def test_verify_passes_then_names_the_changed_file(capsys, artifacts):
    store, sae = artifacts
    code, out, err = run(capsys, "verify", store, sae)
    assert code == 0, err
    assert out.count("\nok ") + out.startswith("ok ") == 2 and "store content hash" in out and "SAE weights sha256" in out
    with h5py.File(store, "r+") as f:
        f["activations"][10, 2] += 1.0
    code, out, err = run(capsys, "verify", store, sae)
    assert code == 1 and out.startswith("ok ") and str(sae) in out  # the SAE still checks out
    assert err.count("\n") == 1 and str(store) in err and "content hash mismatch" in err
    weights = sae / "sae_weights.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 1  # one bit of the last float
    weights.write_bytes(bytes(raw))
    code, out, err = run(capsys, "verify", sae)
    assert_one_line_error(code, out, err, weights, "sha256 mismatch")


def test_verify_refuses_what_it_cannot_check(capsys, artifacts, tmp_path):
    _, sae = artifacts
    (sae / "metrics.json").unlink()
    code, out, err = run(capsys, "verify", sae)
    assert_one_line_error(code, out, err, sae, "no metrics.json")
    code, out, err = run(capsys, "verify", tmp_path / "missing.h5")
    assert_one_line_error(code, out, err, "missing.h5", "does not exist")


def test_compare_refuses_an_all_zero_decoder(capsys, tmp_path):
    rng = np.random.default_rng(1)
    a = write_sae(tmp_path / "a", rng.standard_normal((32, 16)), rng.standard_normal((16, 32)))
    b = write_sae(tmp_path / "b", np.zeros((32, 16)), rng.standard_normal((16, 32)))
    code, out, err = run(capsys, "compare", a, b, "--json", "--baseline-draws", "0")
    assert_one_line_error(code, out, err, b / "sae_weights.safetensors", "all zeros")
