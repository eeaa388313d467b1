"""SAE training through sae-lens: every architecture, determinism, checkpoint format."""

import json

import pytest

from saesim.errors import SaesimError
from saesim.synthetic import write_synthetic_store

sae_lens = pytest.importorskip("sae_lens")

from saesim.training import SAESpec, train_sae  # noqa: E402


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2},
             "bias": False, "seed": 0}
    write_synthetic_store(path, model, 20_000, chunk_rows=2048, progress=False)
    return path


def spec(arch, sparsity, seed=0, **kw):
    base = dict(lr=1e-2, training_samples=20_000, batch_size=256, eval_rows=2048)
    base.update(kw)
    return SAESpec(arch, 16, sparsity, seed, seed, **base)


@pytest.mark.parametrize(
    "arch,sparsity",
    [("standard", 0.05), ("topk", 3), ("batchtopk", 3), ("jumprelu", 0.05), ("matryoshka_batchtopk", 3)],
)
def test_every_architecture_trains_and_saves_in_sae_lens_format(toy_store, tmp_path, arch, sparsity):
    out = tmp_path / arch
    metrics = train_sae(toy_store, spec(arch, sparsity), out)
    assert sorted(p.name for p in out.iterdir()) == ["cfg.json", "metrics.json", "sae_weights.safetensors"]
    sae = sae_lens.SAE.load_from_disk(str(out))
    assert tuple(sae.W_dec.shape) == (16, 16)
    assert metrics["explained_variance"] > 0.3
    assert 0 <= metrics["dead_fraction"] <= 1
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["store_content_hash"] and saved["weights_sha256"] and saved["versions"]["sae-lens"]
    if arch == "topk":
        assert metrics["l0"] == pytest.approx(3, abs=0.01)


def test_same_seed_gives_identical_bytes_and_seeds_differ(toy_store, tmp_path):
    a = train_sae(toy_store, spec("topk", 3, seed=1), tmp_path / "a")
    b = train_sae(toy_store, spec("topk", 3, seed=1), tmp_path / "b")
    c = train_sae(toy_store, spec("topk", 3, seed=2), tmp_path / "c")
    assert (tmp_path / "a" / "sae_weights.safetensors").read_bytes() == (tmp_path / "b" / "sae_weights.safetensors").read_bytes()
    assert a["weights_sha256"] == b["weights_sha256"] != c["weights_sha256"]


def test_init_seed_and_data_seed_are_separate_sources(toy_store, tmp_path):
    base = train_sae(toy_store, SAESpec("topk", 16, 3, 0, 0, lr=1e-2, training_samples=5_000, batch_size=256), tmp_path / "base")
    init = train_sae(toy_store, SAESpec("topk", 16, 3, 1, 0, lr=1e-2, training_samples=5_000, batch_size=256), tmp_path / "init")
    data = train_sae(toy_store, SAESpec("topk", 16, 3, 0, 1, lr=1e-2, training_samples=5_000, batch_size=256), tmp_path / "data")
    assert len({base["weights_sha256"], init["weights_sha256"], data["weights_sha256"]}) == 3


def test_k_not_below_width_is_refused_before_training(toy_store, tmp_path):
    with pytest.raises(SaesimError, match="k=16 must be smaller than the width 16"):
        train_sae(toy_store, spec("topk", 16), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_nan_store_stops_training_naming_the_file(toy_store, tmp_path):
    import shutil

    import h5py
    import numpy as np

    bad = tmp_path / "bad.h5"
    shutil.copy(toy_store, bad)
    with h5py.File(bad, "a") as f:
        f["activations"][100:200] = np.nan
    with pytest.raises(SaesimError, match=r"bad\.h5: non-finite activation"):
        train_sae(bad, spec("topk", 3), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_killed_training_resumes_to_identical_weights(toy_store, tmp_path):
    """SIGKILL after a trainer checkpoint; the rerun resumes and equals an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    full = train_sae(toy_store, spec("batchtopk", 3, seed=5, training_samples=60_000), tmp_path / "full")
    resume = tmp_path / "resume"
    out = tmp_path / "killed"
    code = textwrap.dedent(
        f"""
        from saesim.training import SAESpec, train_sae
        spec = SAESpec("batchtopk", 16, 3, 5, 5, lr=1e-2, training_samples=60_000, batch_size=256, eval_rows=2048)
        train_sae({str(toy_store)!r}, spec, {str(out)!r}, resume_dir={str(resume)!r}, n_checkpoints=3)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(resume.glob("*/.complete")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(resume.glob("*/.complete")), "no checkpoint was written before the kill"
    assert not out.exists()  # nothing half-written under the output name
    resumed = train_sae(toy_store, spec("batchtopk", 3, seed=5, training_samples=60_000), out, resume_dir=resume, n_checkpoints=3)
    assert resumed["resumed_from_samples"] is not None and resumed["resumed_from_samples"] > 0
    assert resumed["weights_sha256"] == full["weights_sha256"]
    assert not resume.exists()


@pytest.fixture(scope="module")
def offset_store_with_outliers(tmp_path_factory):
    """Token store: rows = offset + noise; every 500th row (never position 0) is a planted
    "massive activation" with 50x the typical norm; position 0 rows are all-constant."""
    import numpy as np

    from saesim.activation_store import StoreWriter

    rng = np.random.default_rng(0)
    n, d = 6000, 16
    offset = np.linspace(5.0, 20.0, d)
    acts = offset + rng.normal(size=(n, d))
    positions = np.arange(n) % 100
    outliers = (np.arange(n) % 500 == 250)
    acts[outliers] *= 50
    path = tmp_path_factory.mktemp("offset") / "offset.h5"
    with StoreWriter(path, d, chunk_rows=1024, with_tokens=True) as w:
        w.append(acts, token_ids=np.zeros(n, np.int32), positions=positions, context_ids=np.arange(n) // 100)
    return path, acts, positions, outliers, offset


def test_norm_outliers_and_positions_are_in_neither_training_nor_evaluation(offset_store_with_outliers):
    from saesim.activation_store import open_store
    from saesim.training import split_rows

    path, _, positions, outliers, _ = offset_store_with_outliers
    with open_store(path) as store:
        train, evals = split_rows(store, SAESpec("topk", 16, 2, 0, 0, eval_rows=500, exclude_positions=(0,), exclude_norm_above=10))
        train_all, evals_all = split_rows(store, SAESpec("topk", 16, 2, 0, 0, eval_rows=500, exclude_positions=(0,)))
    assert not (train & evals).any()
    assert not train[outliers].any() and not evals[outliers].any(), "every planted outlier is left out"
    assert not train[positions == 0].any() and not evals[positions == 0].any()
    assert (train | evals).sum() == (positions != 0).sum() - outliers.sum(), "nothing else is left out"
    assert train_all[outliers].sum() + evals_all[outliers].sum() == outliers.sum(), "without the option, outliers stay"


def test_b_dec_mean_init_starts_at_the_training_rows_mean(offset_store_with_outliers, tmp_path):
    import numpy as np
    from safetensors.numpy import load_file

    path, acts, positions, outliers, offset = offset_store_with_outliers
    kw = dict(lr=1e-7, training_samples=256, batch_size=256, eval_rows=500, exclude_positions=(0,), exclude_norm_above=10)
    train_sae(path, SAESpec("topk", 16, 2, 0, 0, b_dec_init="mean", **kw), tmp_path / "mean")
    train_sae(path, SAESpec("topk", 16, 2, 0, 0, **kw), tmp_path / "zeros")
    b_mean = load_file(tmp_path / "mean" / "sae_weights.safetensors")["b_dec"]
    b_zero = load_file(tmp_path / "zeros" / "sae_weights.safetensors")["b_dec"]
    keep = (positions != 0) & ~outliers
    keep[np.flatnonzero(keep)[:500]] = False  # the held-out evaluation rows
    np.testing.assert_allclose(b_mean, acts[keep].mean(0), atol=1e-3)  # one step of lr 1e-7 moves it < 1e-6
    assert np.abs(b_zero).max() < 1e-3


def test_unknown_b_dec_init_is_refused(toy_store, tmp_path):
    with pytest.raises(SaesimError, match="b_dec_init"):
        train_sae(toy_store, spec("topk", 3, b_dec_init="median"), tmp_path / "bad")
