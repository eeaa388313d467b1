"""The trained "no-feature" null: Gaussian stores with a store's moments, and SAEs on them."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest

from saesim.stores.activation_store import StoreWriter, open_store
from saesim.errors import SaesimError
from saesim.sources.gaussian_null import NULL_GROUP, gaussian_factor, iter_gaussian_rows, streaming_moments, write_null_store
from saesim.registry.metrics import excess
from saesim.sources.synthetic import write_synthetic_store


def _lm_like_store(path, rows, *, dtype="float32", chunk_rows=256):
    """A token store: positions 0..15 per context, so position 0 can be excluded."""
    n = len(rows)
    with StoreWriter(path, rows.shape[1], dtype=dtype, chunk_rows=chunk_rows, with_tokens=True, attrs={"model": "m", "hook": "h"}) as w:
        w.append(rows, token_ids=np.zeros(n, np.int32), positions=np.arange(n, dtype=np.int32) % 16, context_ids=np.arange(n, dtype=np.int32) // 16)
    return path


def test_streaming_moments_equal_numpy_on_the_selected_rows(tmp_path, rng):
    # a large shared offset (like a residual stream's) must cost no precision
    x = (rng.standard_normal((3000, 6)) @ rng.standard_normal((6, 6)) + 1000.0).astype(np.float32)
    mask = rng.random(3000) < 0.7
    with StoreWriter(tmp_path / "s.h5", 6, chunk_rows=128) as w:
        w.append(x)
    with open_store(tmp_path / "s.h5") as store:
        mean, cov, n = streaming_moments(store, mask, chunk_rows=97)
    ref = x[mask].astype(np.float64)
    assert n == mask.sum()
    np.testing.assert_allclose(mean, ref.mean(0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(cov, np.cov(ref, rowvar=False, bias=True), rtol=1e-10, atol=1e-9)


def test_factor_of_a_singular_covariance_reproduces_it(rng):
    basis = np.linalg.qr(rng.standard_normal((10, 3)))[0]
    cov = basis @ np.diag([4.0, 1.0, 0.25]) @ basis.T  # rank 3 in 10 dimensions
    factor, rank = gaussian_factor(cov)
    assert rank == 3
    np.testing.assert_allclose(factor @ factor.T, cov, atol=1e-12)
    with pytest.raises(SaesimError, match="square"):
        gaussian_factor(np.zeros((2, 3)))


def test_gaussian_rows_have_the_moments_and_are_deterministic(rng):
    mean = np.array([3.0, -1.0, 0.5])
    a = rng.standard_normal((3, 3))
    cov = a @ a.T
    factor, _ = gaussian_factor(cov)
    rows = np.concatenate(list(iter_gaussian_rows(mean, factor, 200_000, seed=4, chunk_rows=4096)))
    assert rows.shape == (200_000, 3)
    np.testing.assert_allclose(rows.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(rows, rowvar=False), cov, atol=0.05 * np.abs(cov).max())
    again = np.concatenate(list(iter_gaussian_rows(mean, factor, 200_000, seed=4, chunk_rows=4096)))
    assert np.array_equal(rows, again)


def test_null_store_follows_its_source_and_the_training_exclusions(tmp_path, rng):
    x = rng.standard_normal((4096, 8)).astype(np.float32) + 2.0
    x[np.arange(4096) % 16 == 0] += 50.0  # position 0 (BOS) far off
    x[7] *= 400.0  # one massive-activation row
    src = _lm_like_store(tmp_path / "src.h5", x, dtype="float16")
    out = tmp_path / "null.h5"
    summary = write_null_store(src, out, exclude_positions=[0], exclude_norm_above=10, seed=3)
    keep = (np.arange(4096) % 16 != 0) & (np.arange(4096) != 7)
    with open_store(src) as s:
        fitted = s.read_rows(0, s.n_rows).astype(np.float64)[keep]
    with open_store(out) as null:
        assert (null.n_rows, null.d, null.activations.dtype.name, null.chunk_rows()) == (4096, 8, "float16", 256)
        assert not null.has_tokens and "ground_truth" not in null.file
        group = null.group(NULL_GROUP)
        np.testing.assert_allclose(group["mean"], fitted.mean(0), atol=1e-9)
        np.testing.assert_allclose(group["covariance"], np.cov(fitted, rowvar=False, bias=True), atol=1e-9)
        attrs = null.attrs
        assert attrs["n_fit_rows"] == keep.sum() == summary["n_fit_rows"]
        assert attrs["source_content_hash"] == open_store(src).content_hash
        assert (attrs["hook"], attrs["model"], attrs["null_seed"]) == ("h", "m", 3)
        drawn = null.read_rows(0, null.n_rows).astype(np.float64)
        np.testing.assert_allclose(drawn.mean(0), fitted.mean(0), atol=0.1)
        first_hash = null.content_hash
    # deterministic: the same seed gives the same bytes, another seed other draws
    write_null_store(src, tmp_path / "again.h5", exclude_positions=[0], exclude_norm_above=10, seed=3)
    write_null_store(src, tmp_path / "other.h5", exclude_positions=[0], exclude_norm_above=10, seed=4)
    with open_store(tmp_path / "again.h5") as a, open_store(tmp_path / "other.h5") as b:
        assert a.content_hash == first_hash != b.content_hash
        assert np.array_equal(a.read_rows(0, 4096), open_store(out).read_rows(0, 4096))


def test_no_rows_left_is_one_clear_error(tmp_path, rng):
    src = _lm_like_store(tmp_path / "src.h5", rng.standard_normal((64, 4)).astype(np.float32))
    with pytest.raises(SaesimError, match="no rows left"):
        write_null_store(src, tmp_path / "null.h5", exclude_positions=list(range(16)))
    assert not (tmp_path / "null.h5").exists() and not list(tmp_path.glob("null.h5.partial-*"))


def test_excess_over_null():
    assert excess(0.8, 0.6) == pytest.approx(0.5)
    assert excess(0.6, 0.6) == 0
    assert np.isnan(excess(0.8, np.nan)) and np.isnan(excess(0.8, 1.0))
    np.testing.assert_allclose(excess([1.0, 0.4], [0.5, 0.5]), [1.0, -0.2])


# --------------------------------------------------------------------------- the known answer


def _pair_mmcs(store, seeds, tmp_path, tag):
    """Mean max |cos| of every seed pair of tiny TopK SAEs trained on ``store``."""
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity import compare_decoders
    from saesim.saes.training import SAESpec, train_sae

    dirs = {}
    for s in seeds:
        spec = SAESpec("topk", 8, 3, s, s, lr=3e-2, training_samples=30_000, batch_size=256, eval_rows=1024)
        train_sae(store, spec, tmp_path / f"{tag}{s}")
        dirs[s] = load_sae_weights(tmp_path / f"{tag}{s}")
    return np.array([compare_decoders(dirs[a].W_dec, dirs[b].W_dec, with_baseline=False)["mmcs"] for a, b in itertools.combinations(seeds, 2)])


def test_known_answer_real_features_beat_their_null_and_gaussian_data_sits_at_its_null(tmp_path):
    """SAEs on a toy store with real sparse features agree far above SAEs trained the same way
    on its Gaussian twin; SAEs on Gaussian data agree no more than on the Gaussian twin of that
    data (within two null standard deviations)."""
    pytest.importorskip("sae_lens")
    toy = tmp_path / "toy.h5"
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.2},
             "std_firing_magnitudes": 0.15, "orthogonalization": {"num_steps": 300, "lr": 0.05}, "bias": False, "seed": 0}
    write_synthetic_store(toy, model, 12_000, chunk_rows=1024, progress=False)
    gauss = tmp_path / "gauss.h5"  # a Gaussian store: the toy store's twin ...
    write_null_store(toy, gauss, seed=0)
    gauss_null = tmp_path / "gauss_null.h5"  # ... and its own null
    write_null_store(gauss, gauss_null, seed=1)

    real = _pair_mmcs(toy, [0, 1, 2], tmp_path, "real")
    on_gauss = _pair_mmcs(gauss, [0, 1, 2], tmp_path, "gauss")  # also the toy store's null
    null_of_gauss = _pair_mmcs(gauss_null, [0, 1, 2, 3, 4], tmp_path, "gnull")

    toy_null, toy_null_std = on_gauss.mean(), on_gauss.std()
    # measured with the earlier hand-written generator (orthogonal features, as here): real 0.905
    # (pairs 0.878-0.958), its null 0.674 +- 0.032, the Gaussian's null 0.664 +- 0.040
    assert real.mean() > 0.85
    assert real.mean() > toy_null + 4 * toy_null_std
    assert excess(real.mean(), toy_null) > 0.5
    assert abs(on_gauss.mean() - null_of_gauss.mean()) <= 2 * null_of_gauss.std()
    assert null_of_gauss.std() > 0  # the check above is not vacuous
