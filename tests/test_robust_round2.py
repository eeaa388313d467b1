"""Nothing silently wrong, round two (issue 28): one test (or a few) per item, each failing on
the code before the fix. Items: 1 null pair scored like the real pair; 2 --out that cannot be
created; 3 hierarchy larger than num_features; 4 trained-SAE cache vs the store checks;
5 broken sparsify layers; 6 verify hashes cfg.json and store attributes; 7 config checks up
front; 8 smaller ones; 9 YTE configs refused; 10 figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from saesim.cli import main
from saesim.config import validate_config
from saesim.errors import SaesimError
from test_compare_null import write_sae

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *needles) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in err, (needle, err)


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """r1, r2 random; a and a_neg its sign-flipped copy (signed cos -1 for every matched pair)."""
    root = tmp_path_factory.mktemp("saes")
    rng = np.random.default_rng(0)
    n, d = 128, 32
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    return {
        "a": write_sae(root / "a", dec, enc),
        "a_neg": write_sae(root / "a_neg", -dec, -enc),
        "r1": write_sae(root / "r1", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
        "r2": write_sae(root / "r2", rng.standard_normal((n, d)), rng.standard_normal((d, n))),
    }


# -------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("cosine", ["abs", "signed"])
def test_item1_null_pair_is_scored_with_the_real_pair_s_cosine_and_options(capsys, saes, cosine):
    """The null pair (a, -a) scored as its own comparison with the same options gives exactly the
    ``_null`` values: by signed cos the sign-flipped copy is far from 1, by |cos| it is 1."""
    opts = ["--cosine", cosine, "--thresholds", "0.3", "0.6", "--shared-threshold", "0.4", "--top-m", "4",
            "--baseline-draws", "1", "--json"]
    code, out, err = run(capsys, "compare", saes["a"], saes["a_neg"], *opts)
    assert code == 0, err
    alone = json.loads(out)
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], *opts, "--null-a", saes["a"], "--null-b", saes["a_neg"])
    assert code == 0, err
    res = json.loads(out)
    for m in ("mmcs", "hungarian_mean_cos", "shared_latents_frac", "frac_matched_above", "frac_best_match_above"):
        assert res[f"{m}_null"] == alone[m], m
    if cosine == "signed":
        assert res["hungarian_mean_cos_null"] < 0.5  # not the |cos| value 1.0 of a sign-flipped copy
        assert res["mmcs_excess"] == pytest.approx((res["mmcs"] - alone["mmcs"]) / (1 - alone["mmcs"]))
    else:
        assert res["hungarian_mean_cos_null"] == pytest.approx(1.0)


def test_item1_excess_refuses_a_null_scored_differently():
    from saesim.similarity import excess_over_null

    with pytest.raises(SaesimError, match="cosine"):
        excess_over_null({"cosine": "signed", "mmcs": 0.5}, {"mmcs": 0.9})
    assert excess_over_null({"mmcs": 0.5}, {"mmcs": 0.0})["mmcs_excess"] == 0.5


# -------------------------------------------------------------------------- item 2


def test_item2_out_file_that_cannot_be_created_is_one_line_and_the_result_is_printed(capsys, saes, monkeypatch, tmp_path):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")  # as /proc, NFS root squash, ACLs, SELinux do

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "x.h5"
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--baseline-draws", "0", "--out", target)
    assert code == 1
    assert "mean max" in out.lower() or "mmcs" in out.lower() or "hungarian" in out.lower(), out  # the table
    one_line(err, target, "cannot write", "Permission denied")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    code, out, err = run(capsys, "compare", saes["r1"], saes["r2"], "--baseline-draws", "0", "--json", "--out", target)
    assert code == 1 and json.loads(out)["mmcs"] > 0  # the JSON result still comes out whole
    one_line(err, target)


# -------------------------------------------------------------------------- item 3


def toy_experiment(model):
    return {"experiments": {"t": {"source": {"kind": "toy", "model": model},
                                  "sae": {"seeds": [0, 1], "training": {"lr": 0.01, "training_samples": 1000, "batch_size": 64},
                                          "variants": [{"architecture": "topk", "width": 8, "k": [2]}]}}}}


def test_item3_hierarchy_larger_than_num_features_is_refused_naming_the_key():
    from saesim.synthetic import hierarchy_size

    model = {"num_features": 8, "hidden_dim": 16, "bias": False, "seed": 0,
             "hierarchy": {"total_root_nodes": 50, "branching_factor": 4, "max_depth": 3}}
    with pytest.raises(SaesimError) as info:
        validate_config(toy_experiment(model), SCHEMA)
    msg = str(info.value)
    assert "experiments.t.source.model.hierarchy" in msg and "num_features=8" in msg and "4250" in msg and "\n" not in msg
    assert hierarchy_size({"total_root_nodes": 50, "branching_factor": 4, "max_depth": 3}) == 50 * (1 + 4 + 16 + 64)
    assert hierarchy_size({"total_root_nodes": 2, "branching_factor": [2, 3], "max_depth": 1}) == 2 * 4
    # exactly as many features as nodes is fine
    ok = {**model, "num_features": 12, "hierarchy": {"total_root_nodes": 4, "branching_factor": 2, "max_depth": 1}}
    validate_config(toy_experiment(ok), SCHEMA)


def test_item3_store_records_the_hierarchy_actually_built(tmp_path):
    from saesim.synthetic import write_synthetic_store

    model = {"num_features": 16, "hidden_dim": 16, "bias": False, "seed": 0,
             "firing_probability": {"generator_name": "constant", "probability": 0.25},
             "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 2}}
    write_synthetic_store(tmp_path / "s.h5", model, 600, chunk_rows=200, progress=False)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        built = json.loads(f["ground_truth"].attrs["hierarchy_built"])
        parent = f["ground_truth/hierarchy_parent"][()]
        note = f["ground_truth"].attrs["l0_note"]
    # 2 roots, 4 children, 8 grandchildren: 14 of the 16 features
    assert built == {"n_roots": 2, "n_features_in_forest": 14, "max_depth": 2, "n_children": 12}
    assert (parent >= 0).sum() == 12
    assert "true_l0" in note and "expected_l0" in note  # item 8: which L0 to believe


# -------------------------------------------------------------------------- item 4


@pytest.fixture(scope="module")
def cache_setup(tmp_path_factory):
    pytest.importorskip("sae_lens")
    from saesim.synthetic import write_synthetic_store
    from saesim.training import SAESpec, train_sae

    root = tmp_path_factory.mktemp("cache")
    store = root / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "bias": False, "seed": 0,
             "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2}}
    write_synthetic_store(store, model, 6000, chunk_rows=1000, progress=False)
    spec = SAESpec("topk", 16, 3, 1, 1, lr=1e-2, training_samples=2048, batch_size=256, eval_rows=1000)
    train_sae(store, spec, root / "sae", trained_cache=root / "cache")
    return store, spec, root


def _damaged_copy(store, tmp_path, how):
    bad = tmp_path / "toy.h5"
    shutil.copy(store, bad)
    with h5py.File(bad, "r+") as f:
        if how == "nan_row":
            f["activations"][100] = np.nan
        elif how == "zero_variance":
            f["activations"][...] = 0.5
        elif how == "changed_rows":
            f["activations"][10:20] *= 2.0
        elif how == "changed_config_attr":
            f.attrs["hook"] = "blocks.3.hook_resid_post"
    return bad


@pytest.mark.parametrize("how,needle", [("nan_row", "non-finite activation (NaN/inf) at row 100"),
                                        ("zero_variance", "content hash mismatch"),
                                        ("changed_rows", "content hash mismatch"),
                                        ("changed_config_attr", "attribute hash mismatch")])
def test_item4_trained_cache_does_not_bypass_the_store_checks(cache_setup, tmp_path, how, needle):
    """A store damaged after training keeps its recorded content_hash, so the cache key still
    matches: the cache must check the rows first and stop with one line, publishing nothing."""
    from saesim.training import _CHECKED_STORES, train_sae

    store, spec, root = cache_setup
    cache = tmp_path / "cache"
    shutil.copytree(root / "cache", cache)
    bad = _damaged_copy(store, tmp_path, how)
    _CHECKED_STORES.clear()
    with pytest.raises(SaesimError) as info:
        train_sae(bad, spec, tmp_path / "out", trained_cache=cache)
    msg = str(info.value)
    assert msg.startswith(str(bad)) and needle in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_item4_unchanged_store_still_restores_from_the_cache(cache_setup, tmp_path, capsys):
    from saesim.training import train_sae

    store, spec, root = cache_setup
    cache = tmp_path / "cache"
    shutil.copytree(root / "cache", cache)
    metrics = train_sae(store, spec, tmp_path / "out", trained_cache=cache)
    assert "restored from" in capsys.readouterr().out
    assert metrics["weights_sha256"] == json.loads((root / "sae/metrics.json").read_text())["weights_sha256"]


# -------------------------------------------------------------------------- item 6


def test_item6_verify_catches_an_edited_cfg_json_and_edited_store_attributes(capsys, cache_setup, tmp_path):
    store, spec, root = cache_setup
    sae = tmp_path / "sae"
    shutil.copytree(root / "sae", sae)
    local_store = tmp_path / "toy.h5"
    shutil.copy(store, local_store)
    code, out, err = run(capsys, "verify", sae, local_store)
    assert code == 0, err
    cfg = json.loads((sae / "cfg.json").read_text())
    cfg["k"] = 5
    (sae / "cfg.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    code, out, err = run(capsys, "verify", sae)
    assert code == 1
    one_line(err, sae / "cfg.json", "sha256 mismatch")
    for key, value in (("n_rows", 5000), ("hook", "other"), ("config", json.dumps({"seed": 1}))):
        edited = tmp_path / f"edited_{key}.h5"
        shutil.copy(store, edited)
        with h5py.File(edited, "r+") as f:
            f.attrs[key] = value
        code, out, err = run(capsys, "verify", edited)
        assert code == 1, (key, out)
        assert str(edited) in err and ("attribute hash mismatch" in err or "n_rows" in err), err
    edited = tmp_path / "edited_gt.h5"
    shutil.copy(store, edited)
    with h5py.File(edited, "r+") as f:
        f["ground_truth"].attrs["synthetic_model_config"] = json.dumps({"num_features": 9})
    code, out, err = run(capsys, "verify", edited)
    one_line(err, edited, "attribute hash mismatch")
