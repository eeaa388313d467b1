import numpy as np
import pytest

from saesim.errors import SaesimError
from saesim.toy_model import (
    ToyModelConfig,
    correlation_matrix,
    iter_toy_samples,
    make_toy_model,
    measured_l0,
    sample_feature_activations,
)


def test_default_true_l0_is_about_11():
    model = make_toy_model(ToyModelConfig())
    assert model.expected_l0 == pytest.approx(11.0)
    coeffs = sample_feature_activations(model, 50_000, np.random.default_rng(1))
    assert measured_l0(coeffs) == pytest.approx(11.0, abs=0.1)


def test_marginal_firing_probabilities_match_config():
    model = make_toy_model(ToyModelConfig())
    coeffs = sample_feature_activations(model, 100_000, np.random.default_rng(2))
    freq = (coeffs > 0).mean(axis=0)
    np.testing.assert_allclose(freq, model.firing_probabilities, atol=0.01)
    assert freq[0] == pytest.approx(0.39, abs=0.01) and freq[-1] == pytest.approx(0.05, abs=0.01)


def test_features_are_orthonormal_and_samples_are_their_combinations():
    model = make_toy_model(ToyModelConfig(n_features=20, d=30))
    np.testing.assert_allclose(model.features @ model.features.T, np.eye(20), atol=1e-5)
    acts, coeffs = next(iter_toy_samples(model, 100, 100))
    np.testing.assert_allclose(acts, coeffs @ model.features, atol=1e-5)


@pytest.mark.parametrize("kind,sign", [("positive", 1), ("negative", -1)])
def test_correlated_firing_follows_the_correlation_sign(kind, sign):
    cfg = ToyModelConfig(n_features=5, d=10, p_max=0.4, p_min=0.4, correlation=kind, correlation_strength=0.2)
    model = make_toy_model(cfg)
    fires = sample_feature_activations(model, 50_000, np.random.default_rng(3)) > 0
    corr = np.corrcoef(fires.T)
    assert np.all(sign * corr[0, 1:] > 0.05)
    assert np.all(np.abs(corr[1, 2:]) < 0.03)


def test_correlation_matrix_is_valid():
    c = correlation_matrix(50, "random", 0.3, np.random.default_rng(0))
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert np.linalg.eigvalsh(c).min() > 0


def test_same_seed_same_samples_and_different_seed_differs():
    a = make_toy_model(ToyModelConfig(data_seed=3))
    b = make_toy_model(ToyModelConfig(data_seed=3))
    c = make_toy_model(ToyModelConfig(data_seed=4))
    xa = next(iter_toy_samples(a, 500, 500))[0]
    assert np.array_equal(xa, next(iter_toy_samples(b, 500, 500))[0])
    assert not np.array_equal(xa, next(iter_toy_samples(c, 500, 500))[0])


def test_bad_toy_config_is_one_clear_error():
    with pytest.raises(SaesimError, match="correlation must be one of"):
        ToyModelConfig(correlation="sideways")
    with pytest.raises(SaesimError, match="n_features <= d"):
        ToyModelConfig(n_features=200, d=100)
