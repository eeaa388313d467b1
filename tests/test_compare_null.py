"""``saesim compare --null-a --null-b``: excess over a pair of SAEs trained on null data."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from saesim.cli import main

torch.set_num_threads(1)

METRICS = ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac",
           "frac_matched_above", "frac_best_match_above")


def write_sae(folder, W_dec, W_enc):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"W_dec": np.ascontiguousarray(W_dec, dtype=np.float32),
               "W_enc": np.ascontiguousarray(W_enc, dtype=np.float32),
               "b_dec": np.zeros(W_dec.shape[1], np.float32)},
              str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": W_dec.shape[1], "d_sae": W_dec.shape[0]}))
    return folder


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """A perfect pair (B a permuted, rescaled copy of A) and a random pair, 256 latents x d = 32."""
    root = tmp_path_factory.mktemp("saes")
    rng = np.random.default_rng(0)
    n, d = 256, 32
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    perm = rng.permutation(n)
    return {
        "a": write_sae(root / "a", dec, enc),
        "a_copy": write_sae(root / "a_copy", -2.0 * dec[perm], 0.5 * enc[:, perm]),
        "r1": write_sae(root / "r1", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
        "r2": write_sae(root / "r2", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
        "small": write_sae(root / "small", rng.standard_normal((128, d)), rng.standard_normal((d, 128))),
    }


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_null_pair_identical_to_the_real_pair_gives_zero_excess(capsys, saes):
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--json", "--baseline-draws", "1",
                         "--null-a", saes["r1"], "--null-b", saes["r2"])
    assert code == 0, err
    res = json.loads(out)
    assert res["null"]["a"]["source"].endswith("r1") and res["null"]["b"]["source"].endswith("r2")
    for m in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac"):
        assert res[f"{m}_null"] == pytest.approx(res[m], abs=1e-12), m
        assert res[f"{m}_excess"] == 0.0, m
    for m in ("frac_matched_above", "frac_best_match_above"):
        assert set(res[f"{m}_excess"]) == {"0.5", "0.7", "0.8", "0.9"}
        assert all(v == 0.0 for v in res[f"{m}_excess"].values() if v is not None)
    assert 0.3 < res["mmcs_null"] < 0.9  # a real number, not a degenerate one
    assert "baseline" in res  # the isotropic baseline stays beside the null


def test_perfect_real_pair_gives_excess_one(capsys, saes):
    code, out, err = run(capsys, "compare", saes["a"], saes["a_copy"], "--json", "--baseline-draws", "1",
                         "--null-a", saes["r1"], "--null-b", saes["r2"])
    assert code == 0, err
    res = json.loads(out)
    for m in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac"):
        assert res[f"{m}_excess"] == pytest.approx(1.0, abs=1e-5), m
        assert res[f"{m}_null"] < 0.9
    for m in METRICS:
        assert f"{m}_null" in res and f"{m}_excess" in res


def test_table_with_and_without_null(capsys, saes):
    code, out, err = run(capsys, "compare", saes["a"], saes["a_copy"], "--baseline-draws", "1")
    assert code == 0, err
    said = [line for line in out.splitlines() if "isotropic" in line]
    assert len(said) == 1 and "--null-a" in said[0]
    assert "excess" not in out.splitlines()[3]  # header: value, random, ratio only
    code, out, err = run(capsys, "compare", saes["a"], saes["a_copy"], "--baseline-draws", "1",
                         "--null-a", saes["r1"], "--null-b", saes["r2"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[3].split() == ["metric", "value", "random", "ratio", "null", "excess"]
    mmcs_row = next(line for line in lines if line.startswith("mean max |cos| (symmetric)"))
    assert mmcs_row.split()[-1] == "1.0000"  # excess of a perfect pair
    assert not any("isotropic" in line for line in lines)
    assert any(line.startswith("null: SAEs trained on null data") for line in lines)


def test_json_without_null_says_so(capsys, saes):
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--json", "--baseline-draws", "0")
    assert code == 0, err
    res = json.loads(out)
    assert res["null"] is None and "mmcs_excess" not in res


def one_line_error(code, out, err, *needles):
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


def test_null_errors(capsys, saes, tmp_path):
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--null-a", saes["r1"])
    one_line_error(code, out, err, "--null-a", "--null-b")
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--null-a", saes["r1"],
                         "--null-b", tmp_path / "missing")
    one_line_error(code, out, err, "missing", "--null-b", "no such file")
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--baseline-draws", "0",
                         "--null-a", saes["small"], "--null-b", saes["r2"])
    one_line_error(code, out, err, saes["small"], "--null-a", "128", "256")
