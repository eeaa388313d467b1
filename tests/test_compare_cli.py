"""``saesim compare``: output, per-latent file and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from saesim.cli import main

torch.set_num_threads(1)

REQUIRED = ("n_a", "n_b", "d", "mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos",
            "frac_matched_above", "shared_latents_frac", "baseline")


def write_sae(folder, W_dec, W_enc):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"W_dec": np.ascontiguousarray(W_dec, dtype=np.float32),
               "W_enc": np.ascontiguousarray(W_enc, dtype=np.float32),
               "b_dec": np.zeros(W_dec.shape[1], np.float32)},
              str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": W_dec.shape[1], "d_sae": W_dec.shape[0]}))
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two SAEs where B is a permuted, sign-flipped, rescaled copy of A."""
    root = tmp_path_factory.mktemp("saes")
    rng = np.random.default_rng(0)
    n, d = 256, 32
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    perm = rng.permutation(n)
    a = write_sae(root / "a", dec, enc)
    b = write_sae(root / "b", -2.0 * dec[perm], 0.5 * enc[:, perm])
    return a, b


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, *needles):
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])


def test_json_has_required_keys_and_copies_score_one(capsys, pair):
    code, out, err = run(capsys, "compare", *pair, "--json", "--baseline-draws", "1")
    assert code == 0, err
    res = json.loads(out)  # exactly one JSON object
    for k in REQUIRED:
        assert k in res, k
    for k in ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac"):
        assert res[k] == pytest.approx(1.0, abs=1e-5)
        assert k in res["baseline"]
    assert set(res["frac_matched_above"]) == {"0.5", "0.7", "0.8", "0.9"}
    assert set(res["baseline"]["frac_matched_above"]) == {"0.5", "0.7", "0.8", "0.9"}
    assert res["baseline"]["mmcs"] < 0.6 and res["ratio"]["mmcs"] > 1.5
    assert (res["n_a"], res["n_b"], res["d"]) == (256, 256, 32)


def test_table_output(capsys, pair):
    code, out, err = run(capsys, "compare", *pair, "--baseline-draws", "1", "--thresholds", "0.6", "0.95")
    assert code == 0, err
    assert "mean max |cos| (symmetric)" in out and "random" in out and "ratio" in out
    assert ">= 0.6" in out and ">= 0.95" in out and "shared latents" in out


def test_out_writes_per_latent_arrays_atomically(capsys, pair, tmp_path):
    h5py = pytest.importorskip("h5py")
    out_file = tmp_path / "cmp.h5"
    code, out, err = run(capsys, "compare", *pair, "--json", "--baseline-draws", "0", "--out", out_file)
    assert code == 0, err
    assert "baseline" not in json.loads(out)
    with h5py.File(out_file, "r") as f:
        for name in ("best_b_for_a", "best_cos_a", "best_a_for_b", "best_cos_b",
                     "matching_rows", "matching_cols", "matching_cos", "shared_mask_a"):
            assert name in f, name
        assert f["best_cos_a"].shape == (256,)
        np.testing.assert_allclose(f["matching_cos"][:], 1.0, atol=1e-5)
        assert json.loads(f.attrs["summary_json"])["n_a"] == 256
    assert [p.name for p in tmp_path.iterdir()] == ["cmp.h5"]  # no temporary left behind


def test_sparse_matching_when_over_budget(capsys, pair):
    code, out, err = run(capsys, "compare", *pair, "--json", "--baseline-draws", "1",
                         "--memory-budget-mb", "0.2", "--no-encoders")
    assert code == 0, err
    res = json.loads(out)
    assert res["matching_exact"] is False and res["top_m"] == 16
    assert res["hungarian_mean_cos"] == pytest.approx(1.0, abs=1e-5)
    assert res["shared_latents_frac"] is None


def test_not_an_sae_folder(capsys, pair, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    code, out, err = run(capsys, "compare", pair[0], tmp_path / "notes")
    assert_one_line_error(code, out, err, tmp_path / "notes", "not an SAE")


def test_nan_weights(capsys, pair, tmp_path):
    rng = np.random.default_rng(1)
    dec = rng.standard_normal((256, 32))
    dec[5, 3] = np.nan
    bad = write_sae(tmp_path / "nan", dec, rng.standard_normal((32, 256)))
    code, out, err = run(capsys, "compare", pair[0], bad)
    assert_one_line_error(code, out, err, bad / "sae_weights.safetensors", "W_dec", "non-finite", "NaN")


def test_d_mismatch(capsys, pair, tmp_path):
    rng = np.random.default_rng(2)
    other = write_sae(tmp_path / "d48", rng.standard_normal((256, 48)), rng.standard_normal((48, 256)))
    code, out, err = run(capsys, "compare", pair[0], other)
    assert_one_line_error(code, out, err, other, "d_in=48", "d_in=32")


def test_missing_path_and_bad_options(capsys, pair, tmp_path):
    code, out, err = run(capsys, "compare", pair[0], tmp_path / "missing")
    assert_one_line_error(code, out, err, tmp_path / "missing", "no such file")
    code, out, err = run(capsys, "compare", *pair, "--thresholds", "1.5")
    assert_one_line_error(code, out, err, "1.5")
    code, out, err = run(capsys, "compare", *pair, "--out", tmp_path / "no" / "dir" / "x.h5")
    assert_one_line_error(code, out, err, "x.h5", "cannot write")


def test_console_script_error_is_one_line_without_traceback(pair, tmp_path):
    """The real process: exit status and stderr for a non-SAE folder."""
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "saesim.cli", "compare", str(pair[0]), str(tmp_path / "empty")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "not an SAE folder" in r.stderr


def test_offline_pretrained_id_in_process(capsys, pair, monkeypatch):
    """Offline, a pretrained id fails with one line saying so (sae-lens stubbed: its import takes ~8 s)."""
    import types

    class FakeSAE:
        @staticmethod
        def from_pretrained(release, sae_id, device="cpu"):
            assert os.environ.get("HF_HUB_OFFLINE") == "1"
            raise FileNotFoundError("An error happened while trying to locate the file on the Hub and we "
                                    "cannot find the requested files in the local cache.\nmore detail")

    monkeypatch.setitem(sys.modules, "sae_lens", types.SimpleNamespace(SAE=FakeSAE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = "gpt2-small-res-jb:blocks.0.hook_resid_pre"
    code, out, err = run(capsys, "compare", spec, pair[1])
    assert_one_line_error(code, out, err, spec, "offline", "local cache")


@pytest.mark.slow
def test_offline_pretrained_id(pair):
    """The same through real sae-lens in a real process (imports sae-lens: 8 s or more)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    spec = "gpt2-small-res-jb:blocks.0.hook_resid_pre"
    r = subprocess.run([sys.executable, "-m", "saesim.cli", "compare", spec, str(pair[1])],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert spec in lines[0] and "offline" in lines[0]


@pytest.fixture(scope="module")
def half_shared(tmp_path_factory):
    """sae-lens and sparsify pairs of 600 latents, d = 40, B's first half noisy copies of A's latents (shuffled)."""
    root = tmp_path_factory.mktemp("half")
    rng = np.random.default_rng(3)
    n, d, k = 600, 40, 300
    dec_a, enc_a = rng.standard_normal((n, d)), rng.standard_normal((n, d))  # encoder directions as rows
    dec_b, enc_b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    src, perm = rng.choice(n, size=k, replace=False), rng.permutation(n)
    dec_b[:k] = dec_a[src] + 0.2 * rng.standard_normal((k, d))
    enc_b[:k] = enc_a[src] + 0.2 * rng.standard_normal((k, d))
    dec_b, enc_b = dec_b[perm], enc_b[perm]
    out = {"sae_lens": (write_sae(root / "a", dec_a, enc_a.T), write_sae(root / "b", dec_b, enc_b.T))}
    for name, dec, enc in (("sa", dec_a, enc_a), ("sb", dec_b, enc_b)):
        (root / name).mkdir()
        save_file({"encoder.weight": np.ascontiguousarray(enc, dtype=np.float32),
                   "W_dec": np.ascontiguousarray(dec, dtype=np.float32), "b_dec": np.zeros(d, np.float32)},
                  str(root / name / "sae.safetensors"))
        (root / name / "cfg.json").write_text(json.dumps({"d_in": d, "num_latents": n, "expansion_factor": 0, "k": 8}))
    out["sparsify"] = (root / "sa", root / "sb")
    return out


@pytest.mark.parametrize("fmt,options", [
    ("sae_lens", ()),  # dense: exact Hungarian on the full matrix
    ("sae_lens", ("--memory-budget-mb", "1")),  # tiles of 256 (padded) and the sparse assignment
    ("sae_lens", ("--memory-budget-mb", "1", "--top-m", "1")),  # many greedy edges: rows gathered by index
    ("sparsify", ("--memory-budget-mb", "1")),
])
def test_encoders_read_from_disk_give_the_same_json_as_in_memory(capsys, monkeypatch, half_shared, fmt, options):
    """`saesim compare` reads encoders chunk by chunk from the file (bounded memory); every number of
    its JSON equals the comparison of the same SAEs fully loaded as arrays."""
    import saesim.saes.loading as C
    from saesim.cli import _jsonable
    from saesim.similarity import ComparisonOptions
    from saesim.similarity.suites import compare_pair

    a, b = half_shared[fmt]
    loaded, real_load = [], C.load_sae_weights

    def spy(*args, **kw):
        w = real_load(*args, **kw)
        loaded.append(type(w.W_enc).__name__)
        return w

    monkeypatch.setattr(C, "load_sae_weights", spy)
    code, out, err = run(capsys, "compare", a, b, "--json", "--baseline-draws", "2", *options)
    assert code == 0, err
    assert loaded == ["LazyTensor", "LazyTensor"]
    res = json.loads(out)
    for k in ("seconds", "a", "b", "null", "shared_init", "schema_version", "document", "provenance"):  # beside the metrics
        res.pop(k)
    A, B = real_load(a), real_load(b)
    assert isinstance(A.W_enc, np.ndarray)
    budget = float(options[1]) if options else 1024.0
    top_m = int(options[3]) if len(options) > 2 else 16
    want = compare_pair(A.W_dec, B.W_dec, A.W_enc, B.W_enc,
                        options=ComparisonOptions(memory_budget_mb=budget, top_m=top_m, baseline_draws=2))
    assert res == json.loads(json.dumps(_jsonable(want)))
    assert res["matching_exact"] is (not options)
    assert 0.4 < res["shared_latents_frac"] <= 0.5  # the encoders were compared, not skipped


@pytest.mark.parametrize("budget,top_m", [(1024.0, 16), (1.0, 16), (1.0, 1)])
def test_encoder_matching_from_disk_equals_in_memory(half_shared, budget, top_m):
    """The encoder matching itself (not in the JSON beyond shared_latents_frac): the same pairs and
    the same |cos|, bit for bit, whether encoder rows come from the file or from arrays."""
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity import one_to_one_matching

    a, b = half_shared["sae_lens"]
    lazy = [load_sae_weights(p, lazy_encoder=True).W_enc.T for p in (a, b)]
    eager = [load_sae_weights(p).W_enc.T for p in (a, b)]
    got = one_to_one_matching(*lazy, memory_budget_mb=budget, top_m=top_m)
    want = one_to_one_matching(*eager, memory_budget_mb=budget, top_m=top_m)
    assert got.exact == want.exact == (budget > 100)
    np.testing.assert_array_equal(got.rows, want.rows)
    np.testing.assert_array_equal(got.cols, want.cols)
    np.testing.assert_array_equal(got.cos, want.cos)
