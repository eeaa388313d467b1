"""Fourier ground truth on planted answers."""

import numpy as np
import pytest

from saesim.analysis import fourier
from saesim.errors import SaesimError

P = 23


def planted_embedding(p: int, freqs: list[int], d: int, seed: int = 0) -> np.ndarray:
    """[p, d] embedding that is a random linear map of cos/sin of ``freqs`` only."""
    rng = np.random.default_rng(seed)
    x = np.arange(p)
    waves = np.concatenate([[np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)] for k in freqs])
    return waves.T @ rng.normal(size=(2 * len(freqs), d))


def test_basis_is_orthonormal_with_labels():
    basis, labels = fourier.fourier_basis(P)
    assert basis.shape == (P, P)
    np.testing.assert_allclose(basis @ basis.T, np.eye(P), atol=1e-12)
    assert labels[:3] == ["const", "cos1", "sin1"] and labels[-1] == f"sin{(P - 1) // 2}"


def test_even_p_is_refused():
    with pytest.raises(SaesimError, match="odd"):
        fourier.fourier_basis(10)


def test_planted_frequencies_are_found_exactly():
    emb = planted_embedding(P, [2, 5, 9], d=32)
    norms = fourier.frequency_norms(emb, P)
    assert norms.shape == ((P - 1) // 2,)
    assert set(np.flatnonzero(norms > 1e-9) + 1) == {2, 5, 9}
    np.testing.assert_array_equal(fourier.key_frequencies(emb, P), [2, 5, 9])
    np.testing.assert_array_equal(fourier.key_frequencies(emb, P, max_keys=1), [np.argmax(norms) + 1])


def test_relative_threshold_rule():
    norms = np.array([0.1, 5.9, 0.2, 4.1, 2.5, 3.0, 0.0])
    np.testing.assert_array_equal(fourier.select_key_frequencies(norms), [2, 4, 6])
    np.testing.assert_array_equal(fourier.select_key_frequencies(norms, rel_threshold=0.4), [2, 4, 5, 6])
    np.testing.assert_array_equal(fourier.select_key_frequencies(norms, max_keys=2), [2, 4])
    with pytest.raises(SaesimError, match="no non-constant"):
        fourier.select_key_frequencies(np.zeros(5))


def test_planted_frequencies_survive_small_noise():
    emb = planted_embedding(P, [3, 7], d=32) + 0.01 * np.random.default_rng(1).normal(size=(P, 32))
    np.testing.assert_array_equal(fourier.key_frequencies(emb, P), [3, 7])


def test_subspace_dimension_and_overlaps():
    d = 64
    emb = planted_embedding(P, [2, 5, 9], d=d)
    basis = fourier.key_frequency_subspace(emb, P, [2, 5, 9])
    assert basis.shape == (6, d)
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-10)
    inside = np.random.default_rng(2).normal(size=(5, 6)) @ basis
    np.testing.assert_allclose(fourier.fourier_overlap(inside, basis), 1.0, atol=1e-12)
    outside = np.random.default_rng(3).normal(size=(5, d))
    outside -= outside @ basis.T @ basis
    np.testing.assert_allclose(fourier.fourier_overlap(outside, basis), 0.0, atol=1e-12)
    random_rows = np.random.default_rng(4).normal(size=(4000, d))
    baseline = fourier.random_overlap_baseline(basis)
    assert baseline == pytest.approx(6 / d)
    assert fourier.fourier_overlap(random_rows, basis).mean() == pytest.approx(baseline, rel=0.05)


def test_zero_rows_and_shape_errors():
    basis = np.eye(3, 8)
    assert fourier.fourier_overlap(np.zeros((2, 8)), basis).tolist() == [0.0, 0.0]
    with pytest.raises(SaesimError, match="last dimension"):
        fourier.fourier_overlap(np.ones((2, 7)), basis)


def test_activation_subspace_finds_sum_frequency():
    """Activations that vary as cos/sin(2 pi k (a+b) / p) along two directions give that 2-D subspace."""
    d, k = 16, 4
    a, b = np.divmod(np.arange(P * P), P)
    dirs = np.linalg.qr(np.random.default_rng(5).normal(size=(d, 2)))[0].T
    phase = 2 * np.pi * k * (a + b) / P
    acts = np.cos(phase)[:, None] * dirs[0] + np.sin(phase)[:, None] * dirs[1] + 3.0
    basis = fourier.activation_fourier_subspace(acts, P, [k])
    assert basis.shape == (2, d)
    np.testing.assert_allclose(fourier.fourier_overlap(dirs, basis), 1.0, atol=1e-10)
    assert fourier.explained_fraction(acts, basis) == pytest.approx(1.0)
    other = fourier.activation_fourier_subspace(acts, P, [k + 1])
    assert other.shape[0] == 0 or fourier.explained_fraction(acts, other) < 1e-10


def test_fourier_overlap_figure_is_the_same_bytes_every_time(tmp_path):
    # seaborn jitters the per-SAE dots with numpy's global RNG: the figure must not depend on
    # what ran before it, and must leave the caller's RNG as it found it
    import pandas as pd

    from saesim.report.figures import fourier_overlap_plot, save_figure

    rows = [
        {"hook": "blocks.0.hook_mlp_out", "variant": f"{arch}-w8-x", "architecture": arch, "seed": s,
         "act_mean_overlap": 0.5 + 0.1 * s, "act_random_baseline": 0.2, "null": False}
        for arch in ("topk", "standard") for s in range(3)
    ]
    frame = pd.DataFrame(rows)
    outputs = []
    for i, seed in enumerate((1, 2)):
        np.random.seed(seed)
        save_figure(fourier_overlap_plot(frame), tmp_path / f"f{i}.pdf", tmp_path / f"f{i}.png")
        outputs.append((tmp_path / f"f{i}.png").read_bytes())
        assert np.random.randint(1 << 30) == np.random.RandomState(seed).randint(1 << 30)
    assert outputs[0] == outputs[1]
