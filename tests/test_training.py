"""SAE training through sae-lens: every architecture, determinism, checkpoint format."""

import json

import pytest

from saesim.errors import SaesimError
from saesim.toy_model import ToyModelConfig, write_toy_store

sae_lens = pytest.importorskip("sae_lens")

from saesim.training import SAESpec, train_sae  # noqa: E402


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "toy.h5"
    write_toy_store(path, ToyModelConfig(n_features=8, d=16, p_max=0.4, p_min=0.2), 20_000, chunk_rows=2048, progress=False)
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
