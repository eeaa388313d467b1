"""SAE training through sae-lens: every architecture, determinism, checkpoint format."""

import json
import shutil

import pytest

from saesim.errors import SaesimError
from saesim.sources.synthetic import write_synthetic_store

sae_lens = pytest.importorskip("sae_lens")

from saesim.saes.training import SAESpec, train_sae  # noqa: E402


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
    kw = dict(lr=1e-2, training_samples=5_000, batch_size=256, eval_rows=4000)
    base = train_sae(toy_store, SAESpec("topk", 16, 3, 0, 0, **kw), tmp_path / "base")
    init = train_sae(toy_store, SAESpec("topk", 16, 3, 1, 0, **kw), tmp_path / "init")
    data = train_sae(toy_store, SAESpec("topk", 16, 3, 0, 1, **kw), tmp_path / "data")
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
        from saesim.saes.training import SAESpec, train_sae
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

    from saesim.stores.activation_store import StoreWriter

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
    from saesim.stores.activation_store import open_store
    from saesim.stores.rows import split_rows

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


class Interrupted(Exception):
    """Stands for a kill after training, before the SAE is published."""


def interrupted_training(monkeypatch, toy_store, s, out, resume):
    """Train ``s`` with trainer checkpoints and stop before publishing: ``resume`` keeps them."""
    import saesim.saes.training

    def stop(*args, **kwargs):
        raise Interrupted

    with monkeypatch.context() as m:
        m.setattr(saesim.saes.training, "evaluate_sae", stop)
        with pytest.raises(Interrupted):
            train_sae(toy_store, s, out, resume_dir=resume, n_checkpoints=3)
    assert not out.exists()
    return sorted(int(p.name) for p in resume.iterdir() if p.name.isdigit())


@pytest.mark.parametrize("change", ["lr", "sae-lens version"])
def test_resume_checkpoints_made_for_another_sae_are_discarded(toy_store, tmp_path, monkeypatch, capsys, change):
    """Checkpoints of spec A (or of other package versions) under the resume folder: training
    spec B gives exactly a fresh spec-B SAE, not one continued from A's weights."""
    import saesim.saes.training

    a = spec("topk", 3, seed=3, training_samples=40_000)
    b = spec("topk", 3, seed=3, training_samples=40_000, lr=3e-3) if change == "lr" else a
    fresh_b = train_sae(toy_store, b, tmp_path / "fresh")
    resume = tmp_path / "resume"
    with monkeypatch.context() as m:
        if change != "lr":
            versions = saesim.saes.training.producer_versions()
            m.setattr(saesim.saes.training, "producer_versions", lambda: {**versions, "sae-lens": "0.0.1"})
        assert len(interrupted_training(monkeypatch, toy_store, a, tmp_path / "a", resume)) == 3
    capsys.readouterr()
    got = train_sae(toy_store, b, tmp_path / "b", resume_dir=resume, n_checkpoints=3)
    log = capsys.readouterr().out
    assert got["weights_sha256"] == fresh_b["weights_sha256"], "== a fresh spec-B training, bit for bit"
    assert (tmp_path / "b" / "sae_weights.safetensors").read_bytes() == (tmp_path / "fresh" / "sae_weights.safetensors").read_bytes()
    assert got["resumed_from_samples"] is None
    assert f"discarding resume checkpoints {resume}: made for a different SAE" in log
    assert ("spec.lr: 0.01 != 0.003" if change == "lr" else "versions.sae-lens: '0.0.1' != ") in log
    assert not resume.exists()


def test_damaged_resume_checkpoints_are_discarded_not_fatal(toy_store, tmp_path, monkeypatch, capsys):
    """The newest checkpoint has one changed byte (loadable, wrong), the next a truncated
    trainer state (unloadable): both are discarded with a log line and training resumes from
    the oldest, equal to an uninterrupted run."""
    s = spec("topk", 3, seed=4, training_samples=40_000)
    full = train_sae(toy_store, s, tmp_path / "full")
    resume = tmp_path / "resume"
    oldest, middle, newest = interrupted_training(monkeypatch, toy_store, s, tmp_path / "x", resume)
    weights = resume / str(newest) / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    state = resume / str(middle) / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])
    capsys.readouterr()
    got = train_sae(toy_store, s, tmp_path / "resumed", resume_dir=resume, n_checkpoints=3)
    log = capsys.readouterr().out
    assert got["weights_sha256"] == full["weights_sha256"]
    assert got["resumed_from_samples"] == oldest
    assert f"discarding unloadable resume checkpoint {resume / str(newest)}" in log
    assert f"discarding unloadable resume checkpoint {resume / str(middle)}" in log
    assert not resume.exists()


@pytest.mark.parametrize("lr,samples", [(1e30, 20_000), (float("inf"), 20_000), (float("inf"), 60_000)])
def test_diverged_training_fails_naming_the_sae_and_publishes_nothing(toy_store, tmp_path, lr, samples):
    out = tmp_path / "diverged"
    resume = tmp_path / "resume"
    with pytest.raises(SaesimError) as err:
        train_sae(toy_store, spec("topk", 3, lr=lr, training_samples=samples), out, resume_dir=resume, n_checkpoints=2)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{out}: training diverged (non-finite loss")
    assert f"sae.training.lr={lr}" in msg
    if samples == 60_000:  # 235 steps: caught at the step-100 check, before the end
        assert "by step 101" in msg
    assert not out.exists() and not list(tmp_path.glob("diverged.partial-*"))
    assert not resume.exists()


def test_nonfinite_weights_are_named():
    import torch

    from saesim.saes.training import nonfinite_tensors

    layer = torch.nn.Linear(3, 2)
    assert nonfinite_tensors(layer) == []
    with torch.no_grad():
        layer.bias[1] = float("nan")
    assert nonfinite_tensors(layer) == ["bias"]


def test_fewer_training_samples_than_one_batch_is_refused(toy_store, tmp_path):
    with pytest.raises(SaesimError, match=r"sae\.training\.training_samples=100 is smaller than sae\.training\.batch_size=256"):
        train_sae(toy_store, spec("topk", 3, training_samples=100), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_eval_rows_beyond_a_fifth_of_the_rows_are_refused_not_capped(toy_store, tmp_path):
    from saesim.stores.activation_store import open_store
    from saesim.stores.rows import split_rows

    with open_store(toy_store) as store:
        train, evals = split_rows(store, spec("topk", 3, eval_rows=4000))
        assert evals.sum() == 4000 and train.sum() == 16_000
        with pytest.raises(SaesimError, match=r"toy\.h5: sae\.training\.eval_rows=4001 is more than a fifth of the 20000 rows .*at most 4000"):
            split_rows(store, spec("topk", 3, eval_rows=4001))
    with pytest.raises(SaesimError, match=r"sae\.training\.eval_rows=20000"):
        train_sae(toy_store, spec("topk", 3, eval_rows=20_000), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cfg_json_has_sorted_keys_and_equal_bytes_across_processes(toy_store, tmp_path):
    """sae-lens orders cfg.json by a set of names (per-process hash seed); two processes with
    different hash seeds must still write the same bytes."""
    import os
    import subprocess
    import sys

    for hash_seed in ("0", "1"):
        code = (
            "from saesim.saes.training import SAESpec, train_sae\n"
            f"train_sae({str(toy_store)!r}, SAESpec('batchtopk', 16, 3, 0, 0, lr=1e-2, training_samples=2560, batch_size=256, eval_rows=2048), "
            f"{str(tmp_path / hash_seed)!r})\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    a, b = (tmp_path / "0" / "cfg.json").read_bytes(), (tmp_path / "1" / "cfg.json").read_bytes()
    assert a == b

    def keys_sorted(pairs):
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys), keys
        return dict(pairs)

    cfg = json.loads(a, object_pairs_hook=keys_sorted)
    assert cfg["d_sae"] == 16 and "metadata" in cfg
    assert sae_lens.SAE.load_from_disk(str(tmp_path / "0")).cfg.d_sae == 16


def test_trained_cache_republishes_the_same_sae_without_training(toy_store, tmp_path, capsys):
    s = spec("topk", 3, seed=1)
    first = train_sae(toy_store, s, tmp_path / "a", trained_cache=tmp_path / "cache")
    shutil.rmtree(tmp_path / "a")  # as Snakemake does before rerunning a job
    again = train_sae(toy_store, s, tmp_path / "a", trained_cache=tmp_path / "cache")
    assert "restored from" in capsys.readouterr().out
    assert again == first
    assert (tmp_path / "a/sae_weights.safetensors").read_bytes() == (tmp_path / "cache/sae_weights.safetensors").read_bytes()
    # another spec is trained, not restored, and replaces the cache entry
    other = train_sae(toy_store, spec("topk", 3, seed=2), tmp_path / "b", trained_cache=tmp_path / "cache")
    assert "restored from" not in capsys.readouterr().out
    assert other["weights_sha256"] != first["weights_sha256"]
    assert json.loads((tmp_path / "cache/metrics.json").read_text())["weights_sha256"] == other["weights_sha256"]


def test_trained_cache_with_damaged_weights_is_not_used(toy_store, tmp_path, capsys):
    s = spec("topk", 3, seed=1)
    first = train_sae(toy_store, s, tmp_path / "a", trained_cache=tmp_path / "cache")
    shutil.rmtree(tmp_path / "a")
    weights = tmp_path / "cache/sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.unlink()  # a hard link to the published file: replace, do not edit in place
    weights.write_bytes(bytes(data))
    again = train_sae(toy_store, s, tmp_path / "a", trained_cache=tmp_path / "cache")
    assert "differ from the sha256" in capsys.readouterr().out
    assert again["weights_sha256"] == first["weights_sha256"]  # retrained, same bytes
