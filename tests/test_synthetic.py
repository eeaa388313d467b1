"""The toy source on sae_lens.synthetic: presets, validation, determinism, ground truth, metrics."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from saesim.stores.activation_store import open_store
from saesim.workflow.config import validate_config
from saesim.errors import SaesimError
from saesim.sources.synthetic import (
    PRESET_DIR,
    expected_l0,
    model_config,
    preset_names,
    resolve_source,
    truth_feature_activations,
    write_synthetic_store,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SMALL = {"num_features": 12, "hidden_dim": 24, "firing_probability": {"generator_name": "constant", "probability": 0.25},
         "bias": False, "seed": 3}


def experiment(source):
    return {"experiments": {"t": {"source": source, "sae": {"seeds": [0, 1], "training": {"lr": 0.01, "training_samples": 1000, "batch_size": 64},
                                                           "variants": [{"architecture": "topk", "width": 8, "k": [2]}]}}}}


def test_presets_are_the_documented_ones():
    assert preset_names() == ["chanin", "hier", "song", "synthsaebench"]


@pytest.mark.parametrize("name", ["chanin", "hier", "song", "synthsaebench"])
def test_every_preset_validates_and_round_trips_through_the_library(name):
    cfg = validate_config(experiment({"kind": "toy", "preset": name}), SCHEMA)
    model = cfg["experiments"]["t"]["source"]["model"]
    assert model == yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())["model"]
    lib = model_config(model)
    assert lib.num_features == model["num_features"] and lib.seed == model["seed"]
    # every key of the library's own to_dict is set by the preset, none defaulted silently
    assert set(lib.to_dict()) == set(model)


def test_preset_numbers():
    song = resolve_source({"kind": "toy", "preset": "song"})
    assert (song["model"]["num_features"], song["model"]["hidden_dim"]) == (32, 16)
    assert expected_l0(song) == pytest.approx(3.0)
    assert expected_l0(resolve_source({"kind": "toy", "preset": "chanin"})) == pytest.approx(11.0)
    bench = resolve_source({"kind": "toy", "preset": "synthsaebench"})["model"]
    assert (bench["num_features"], bench["hidden_dim"], bench["seed"]) == (16384, 768, 42)
    assert bench["hierarchy"]["total_root_nodes"] == 128 and bench["correlation"]["rank"] == 25


def test_model_keys_override_the_preset():
    src = resolve_source({"kind": "toy", "preset": "chanin", "model": {"hidden_dim": 60, "firing_probability": {"generator_name": "constant", "probability": 0.1}}})
    assert src["model"]["hidden_dim"] == 60 and src["model"]["num_features"] == 50
    assert src["model"]["firing_probability"] == {"generator_name": "constant", "probability": 0.1}  # replaced, not merged
    assert expected_l0(src) == pytest.approx(5.0)


def test_library_errors_become_one_line_naming_the_key():
    with pytest.raises(SaesimError, match=r"^m\.hierarchy: mutually_exclusive_max_depth must be >= mutually_exclusive_min_depth$"):
        model_config({**SMALL, "hierarchy": {"mutually_exclusive_min_depth": 2, "mutually_exclusive_max_depth": 1}}, "m")
    with pytest.raises(SaesimError, match=r"^m\.firing_probability: Must have 0 < min_prob < max_prob <= 1$"):
        model_config({**SMALL, "firing_probability": {"generator_name": "zipfian", "max_prob": 0.2, "min_prob": 0.2}}, "m")
    with pytest.raises(SaesimError, match=r"^m\.std_firing_magnitudes: min_value must be <= max_value$"):
        model_config({**SMALL, "std_firing_magnitudes": {"generator_name": "folded_normal", "std": 0.1, "min_value": 2.0, "max_value": 1.0}}, "m")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    model = {**SMALL, "correlation": {"rank": 2, "correlation_scale": 0.3},
             "hierarchy": {"total_root_nodes": 2, "branching_factor": 2, "max_depth": 1, "mutually_exclusive_portion": 1.0}}
    path = tmp_path_factory.mktemp("syn") / "toy.h5"
    summary = write_synthetic_store(path, model, 3000, chunk_rows=512, progress=False)
    return path, model, summary


def test_store_holds_the_ground_truth(small_store):
    path, model, summary = small_store
    with open_store(path) as store:
        gt = store.group("ground_truth")
        rows = store.read_rows(0, 3000)
        attrs = store.attrs
    assert gt["features"].shape == (12, 24) and gt["correlation_factor"].shape == (12, 2)
    np.testing.assert_allclose(np.linalg.norm(gt["features"], axis=1), 1.0, atol=1e-5)
    # 2 roots with 2 mutually exclusive children each: features 0, 1 are roots, 2-5 their children
    assert sorted(gt["hierarchy_parent"].tolist()) == sorted([-1] * 8 + [0, 0, 1, 1])
    assert gt["hierarchy_exclusive_children"].sum() == 2
    truth = truth_feature_activations(gt)
    assert truth.shape == (3000, 12)
    # the rows are exactly truth @ features (no bias): the kept activations are the store's rows'
    np.testing.assert_allclose(truth.toarray() @ gt["features"], rows, atol=1e-5)
    true_l0 = float((truth.toarray() > 0).sum(1).mean())
    assert attrs["true_l0"] == pytest.approx(true_l0) == pytest.approx(summary["true_l0"])
    assert true_l0 < 12 * 0.25  # the hierarchy switches children off
    np.testing.assert_allclose(gt["firing_rates"], (truth.toarray() > 0).mean(0))
    assert json.loads(attrs["config"])["seed"] == 3


def test_store_is_deterministic_from_the_seed(small_store, tmp_path):
    path, model, _ = small_store
    again = tmp_path / "again.h5"
    write_synthetic_store(again, model, 3000, chunk_rows=512, progress=False)
    other = tmp_path / "other.h5"
    write_synthetic_store(other, {**model, "seed": 4}, 3000, chunk_rows=512, progress=False)
    with open_store(path) as a, open_store(again) as b, open_store(other) as c:
        assert a.content_hash == b.content_hash != c.content_hash


def test_sparse_forward_changes_only_rounding():
    """The sparse product used for large models gives the dense path's rows and the same features."""
    from saesim.sources.synthetic import build_model, iter_samples

    model = build_model({**SMALL, "bias": 0.5})
    dense = list(iter_samples(model, 1000, 256, sparse_forward=False))
    sparse = list(iter_samples(model, 1000, 256, sparse_forward=True))
    for (h1, f1), (h2, f2) in zip(dense, sparse):
        assert (f1 == f2).all()
        np.testing.assert_allclose(h1, h2, atol=1e-5)


def test_sampling_is_bounded_in_memory():
    from saesim.sources.synthetic import MAX_DENSE_ENTRIES, sample_rows

    assert sample_rows(16384, 8192) * 16384 <= MAX_DENSE_ENTRIES
    assert sample_rows(50, 8192) == 8192


def test_library_metrics_known_answers(small_store, tmp_path):
    """An SAE whose decoder is the true dictionary and whose encoder fires exactly on the true
    features scores MCC 1, uniqueness 1, F1 1; a random SAE scores near the isotropic chance."""
    import torch
    from sae_lens import SAE, StandardSAEConfig

    from saesim.analysis.ground_truth import library_metrics

    path, _, _ = small_store
    with open_store(path) as store:
        F = store.group("ground_truth")["features"]
    cfg = StandardSAEConfig(d_in=24, d_sae=12)
    sae = SAE.from_dict(cfg.to_dict())
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(F))
        pinv = np.linalg.pinv(F)  # [24, 12]: rows @ pinv recovers the coefficients
        sae.W_enc.copy_(torch.from_numpy(pinv.astype(np.float32)))
        sae.b_enc.fill_(-1e-3)
        sae.b_dec.zero_()
    sae.save_model(str(tmp_path / "perfect"))
    m = library_metrics(tmp_path / "perfect", path)
    assert m["gt_mcc"] == pytest.approx(1.0, abs=1e-5)
    assert m["gt_uniqueness"] == 1.0
    assert m["gt_f1"] == pytest.approx(1.0)
    assert m["chance"]["gt_mcc"] < 0.7

    torch.manual_seed(0)
    rnd = SAE.from_dict(cfg.to_dict())
    rnd.save_model(str(tmp_path / "random"))
    r = library_metrics(tmp_path / "random", path)
    assert r["gt_mcc"] < 0.7 and r["gt_f1"] < 0.9


def test_store_schema_names_match_the_bad_store_message(tmp_path):
    """A store without the kept truth (not a sae_lens.synthetic store) is refused by name."""
    from saesim.stores.activation_store import StoreWriter
    from saesim.analysis.ground_truth import library_metrics

    p = tmp_path / "old.h5"
    with StoreWriter(p, 4, chunk_rows=64, attrs={"model": "toy", "hook": "toy"}) as w:
        w.append(np.zeros((100, 4), np.float32))
        w.add_group("ground_truth", {"features": np.eye(4, dtype=np.float32)})
    with pytest.raises(SaesimError, match=r"old\.h5: /ground_truth has no truth_indptr"):
        library_metrics(tmp_path / "nosae", p)
    with h5py.File(p) as f:
        assert "ground_truth" in f


def _sae_lens_reference(sae_dir, store_path, batch_rows=1024):
    """The metrics as sae-lens computes them (its own SAE.encode and sae_lens.synthetic)."""
    import torch
    from sae_lens import SAE
    from sae_lens.synthetic import ClassificationMetricsCalculator, feature_uniqueness, mean_correlation_coefficient

    with open_store(store_path) as store:
        group = store.group("ground_truth")
        truth = truth_feature_activations(group)
        rows = store.read_rows(0, truth.shape[0]).astype(np.float32)
    features = torch.from_numpy(group["features"].astype(np.float32))
    sae = SAE.load_from_disk(str(sae_dir), device="cpu")
    W_dec = sae.W_dec.detach().float()
    calc = ClassificationMetricsCalculator(W_dec, features)
    with torch.no_grad():
        for start in range(0, rows.shape[0], batch_rows):
            calc.add_batch(sae.encode(torch.from_numpy(rows[start : start + batch_rows])), torch.from_numpy(truth[start : start + batch_rows].toarray()))
    cls = calc.compute()
    return {"gt_mcc": mean_correlation_coefficient(W_dec, features), "gt_uniqueness": feature_uniqueness(W_dec, features),
            "gt_f1": cls.f1_score, "gt_precision": cls.precision, "gt_recall": cls.recall}


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu", "batchtopk"])
def test_numpy_metrics_equal_sae_lens_synthetic(small_store, tmp_path, arch):
    """library_metrics (numpy, no sae-lens import at job time) equals sae_lens.synthetic's
    mean_correlation_coefficient, feature_uniqueness and ClassificationMetricsCalculator on
    sae-lens's own encoder, for every inference architecture saesim's SAEs are saved as."""
    import torch
    from sae_lens import SAE, JumpReLUSAEConfig, StandardSAEConfig, TopKSAEConfig

    from saesim.analysis.ground_truth import library_metrics

    path, _, _ = small_store
    with open_store(path) as store:
        F = store.group("ground_truth")["features"]
    torch.manual_seed(1)
    if arch == "batchtopk":  # trained as BatchTopK, saved by sae-lens as its inference (JumpReLU) SAE
        from sae_lens import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig

        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=24, d_sae=16, k=3))
    else:
        cfg = {"standard": StandardSAEConfig(d_in=24, d_sae=16), "topk": TopKSAEConfig(d_in=24, d_sae=16, k=3),
               "jumprelu": JumpReLUSAEConfig(d_in=24, d_sae=16)}[arch]
        sae = SAE.from_dict(cfg.to_dict())
    with torch.no_grad():
        sae.W_dec[:4].copy_(torch.from_numpy(F[:4]) + 0.1 * torch.randn(4, 24))  # some latents near true features
        sae.W_enc.copy_(sae.W_dec.T + 0.05 * torch.randn(24, 16))
        sae.b_enc.copy_(0.05 * torch.randn(16))
        sae.b_dec.copy_(0.05 * torch.randn(24))
        if arch == "jumprelu":
            sae.threshold.copy_(0.1 * torch.rand(16))
        if arch == "batchtopk":
            sae.topk_threshold.fill_(0.05)
    if arch == "batchtopk":
        sae.save_inference_model(str(tmp_path / arch))
        assert json.loads((tmp_path / arch / "cfg.json").read_text())["architecture"] == "jumprelu"
    else:
        sae.save_model(str(tmp_path / arch))
    ours = library_metrics(tmp_path / arch, path)
    ref = _sae_lens_reference(tmp_path / arch, path)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert 0 < ours["gt_f1"] < 1
