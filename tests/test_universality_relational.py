"""Relational similarity measures and their permutation nulls."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from saesim.errors import SaesimError
from saesim.similarity.universality import (
    linear_cka,
    mutual_knn_jaccard,
    permutation_p_value,
    relational_similarity,
    rsa,
    svcca,
)
from saesim.similarity.universality.relational import _prepare_cka, knn_indices

torch.set_num_threads(1)


def random_rotation(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_measures_are_one_under_rotation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16))
    y = x @ random_rotation(rng, 16)
    assert svcca(x, y) == pytest.approx(1.0, abs=1e-9)
    assert rsa(x, y) == pytest.approx(1.0, abs=1e-9)
    assert mutual_knn_jaccard(x, y, k=5) == pytest.approx(1.0)
    assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-9)


def test_svcca_sees_through_invertible_maps_and_dimension_change():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8))
    y = x @ rng.normal(size=(8, 20))  # 20-dim but rank 8
    assert svcca(x, y) == pytest.approx(1.0, abs=1e-8)
    assert svcca(x, y, n_components=4) <= 1.0


def test_rsa_equals_spearman_of_cosine_dissimilarities():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6))
    y = x + rng.normal(scale=1.0, size=x.shape)
    iu = np.triu_indices(40, 1)

    def dissim(m):
        u = m / np.linalg.norm(m, axis=1, keepdims=True)
        return (1 - u @ u.T)[iu]

    assert rsa(x, y) == pytest.approx(spearmanr(dissim(x), dissim(y)).statistic, abs=1e-12)


def test_cka_feature_and_gram_forms_agree():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 5))
    y = x[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(scale=0.5, size=(30, 4))
    feature = linear_cka(x, y)
    xc, yc = x - x.mean(0), y - y.mean(0)
    kx, ky = xc @ xc.T, yc @ yc.T
    assert feature == pytest.approx(np.sum(kx * ky) / np.linalg.norm(kx) / np.linalg.norm(ky), abs=1e-12)
    wide_x = np.hstack([x, np.zeros((30, 200))])  # forces the Gram form (dx*dy > 16 n)
    perm = rng.permutation(30)
    assert _prepare_cka(wide_x, y)(perm) == pytest.approx(_prepare_cka(x, y)(perm), abs=1e-12)


def test_knn_by_hand():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=float)
    assert sorted(knn_indices(x, 1)[:, 0]) == [0, 1, 2, 3]
    assert knn_indices(x, 1)[0, 0] == 1 and knn_indices(x, 1)[2, 0] == 3
    y = x[[0, 2, 1, 3]]  # neighbours broken up
    assert mutual_knn_jaccard(x, x, k=1) == 1.0
    assert mutual_knn_jaccard(x, y, k=1) == 0.0


def test_permutation_p_value_convention():
    null = np.array([0.1, 0.2, 0.3, 0.4])
    assert permutation_p_value(0.5, null) == pytest.approx(1 / 5)
    assert permutation_p_value(0.3, null) == pytest.approx(3 / 5)
    assert permutation_p_value(0.0, null) == pytest.approx(1.0)


def test_related_pairing_beats_null_and_unrelated_lands_inside():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 12))
    related = x @ random_rotation(rng, 12) + rng.normal(scale=0.3, size=x.shape)
    res = relational_similarity(x, related, n_null=100, seed=0, knn_k=5)
    for name, r in res.items():
        assert r.p_value <= 1 / 101 + 1e-12, name
        assert r.value > r.null_mean + 5 * r.null_std, name
    # calibration: independent matrices give roughly uniform p-values
    p_values = []
    for seed in range(12):
        r2 = np.random.default_rng(100 + seed)
        res = relational_similarity(r2.normal(size=(120, 8)), r2.normal(size=(120, 8)), n_null=100, seed=seed, knn_k=5)
        p_values += [r.p_value for r in res.values()]
        for r in res.values():
            assert abs(r.value - r.null_mean) < 5 * r.null_std
    p_values = np.array(p_values)
    assert np.mean(p_values < 0.05) < 0.2  # expected 0.05 of 48
    assert 0.3 < np.mean(p_values) < 0.7  # expected 0.5


def _toy_rows(rng, n=300, d=16, n_features=24, p=0.02):
    """Sparse toy-model rows: each of 24 features fires with probability 0.02, so about 60%
    of the rows have no active feature and are exactly zero."""
    features = rng.normal(size=(n_features, d))
    coeffs = (rng.random((n, n_features)) < p) * rng.random((n, n_features))
    return coeffs @ features


def test_mutual_knn_null_is_calibrated_with_zero_rows():
    """Two toy experiments with independent data: mutual kNN must sit at its null. With ties
    (zero rows, exact multiples of one feature) broken by row index, the identity pairing
    gave identical neighbour sets to rows tied on both sides and every p-value was 1/101."""
    p_values, n_rows = [], []
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        x, y = _toy_rows(rng), _toy_rows(rng)
        assert (~x.any(axis=1)).mean() > 0.4 and (~y.any(axis=1)).mean() > 0.4
        r = relational_similarity(x, y, metrics=("mutual_knn",), n_null=100, seed=seed, knn_k=10)["mutual_knn"]
        p_values.append(r.p_value)
        n_rows.append((r.n_rows, int((x.any(axis=1) & y.any(axis=1)).sum())))
    p_values = np.array(p_values)
    assert np.mean(p_values < 0.05) <= 0.1, np.sort(p_values)[:10]
    assert 0.35 < p_values.mean() < 0.65
    assert all(used == directional for used, directional in n_rows)  # rows without a direction are left out


def test_mutual_knn_breaks_ties_at_random():
    x = np.ones((50, 3))  # every row ties with every other
    nx = knn_indices(x, 5, rng=np.random.default_rng(0))
    ny = knn_indices(x, 5, rng=np.random.default_rng(1))
    assert not np.array_equal(np.sort(nx, axis=1), np.sort(ny, axis=1))
    assert (nx != np.arange(50)[:, None]).all()  # never itself
    assert mutual_knn_jaccard(x, x, k=5) < 0.5  # ties are no evidence of shared structure


def test_subsampling_is_seeded_and_bounded():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 6))
    y = rng.normal(size=(500, 6))
    a = relational_similarity(x, y, n_null=5, seed=3, max_rows=100, rsa_max_rows=50)
    b = relational_similarity(x, y, n_null=5, seed=3, max_rows=100, rsa_max_rows=50)
    assert a == b
    assert a["rsa"].n_rows == 50 and a["svcca"].n_rows == 100


def test_bad_inputs_are_refused():
    with pytest.raises(SaesimError, match="same number of rows"):
        svcca(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(SaesimError, match="unknown relational metric"):
        relational_similarity(np.eye(5), np.eye(5), metrics=("bogus",))
