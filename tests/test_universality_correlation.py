"""Streamed exact Pearson correlation between SAE latents, checked against dense numpy."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from saesim.errors import SaesimError
from saesim.similarity.universality import collect_codes, cross_correlation, one_to_one_pairs
from saesim.similarity.universality.correlation import plan_tiles

torch.set_num_threads(1)


def sparse_codes(rng, n_tokens, n_latents, signed=False):
    """Dense [n_tokens, n_latents] codes with per-latent firing rates between 1% and 30%."""
    rates = rng.uniform(0.01, 0.3, n_latents)
    fires = rng.random((n_tokens, n_latents)) < rates
    values = rng.exponential(1.0, (n_tokens, n_latents))
    if signed:
        values *= rng.choice([-1.0, 1.0], size=values.shape)
    return (fires * values).astype(np.float32)


def chunks(dense, chunk_rows):
    for s in range(0, dense.shape[0], chunk_rows):
        yield sp.csr_matrix(dense[s : s + chunk_rows])


def dense_reference(a, b):
    n_a = a.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):  # dead latents give NaN rows
        return np.corrcoef(a.T.astype(np.float64), b.T.astype(np.float64))[:n_a, n_a:]


@pytest.fixture(scope="module")
def small_case():
    rng = np.random.default_rng(0)
    a = sparse_codes(rng, 600, 40)
    b = sparse_codes(rng, 600, 30)
    b[:, :10] += a[:, 5:15] * 2.0  # some correlated pairs
    # a latent of A that fires exactly where nothing in B fires: its best partner is "silent"
    a[:, 0] = 0.0
    silent_rows = np.arange(590, 600)
    b[silent_rows] = 0.0
    a[silent_rows, 0] = 1.0
    return a, b


@pytest.mark.parametrize("chunk_rows", [7, 64, 600])
@pytest.mark.parametrize("max_pairs_per_tile", [50, 10_000_000])
def test_streamed_pearson_matches_dense_corrcoef(small_case, chunk_rows, max_pairs_per_tile):
    a, b = small_case
    ref = dense_reference(a, b)
    ca = collect_codes(chunks(a, chunk_rows), latent_major=True)
    cb = collect_codes(chunks(b, chunk_rows))
    cc = cross_correlation(
        ca, cb, edge_threshold=-1.0, max_edges_per_latent=b.shape[1], max_pairs_per_tile=max_pairs_per_tile
    )
    if max_pairs_per_tile == 50:
        assert cc.n_tiles > 5
    # every co-firing pair's correlation is exact
    cofire = (a != 0).T.astype(int) @ (b != 0).astype(int) > 0
    assert cc.n_cofiring_pairs == cofire.sum()
    assert cofire[cc.edge_a, cc.edge_b].all()
    np.testing.assert_allclose(cc.edge_corr, ref[cc.edge_a, cc.edge_b], atol=1e-5)
    assert cc.edge_a.size == cofire.sum()
    # best partners, both directions, equal the dense argmax
    np.testing.assert_array_equal(cc.a_to_b.partner, ref.argmax(axis=1))
    np.testing.assert_allclose(cc.a_to_b.corr, ref.max(axis=1), atol=1e-5)
    np.testing.assert_array_equal(cc.b_to_a.partner, ref.argmax(axis=0))
    np.testing.assert_allclose(cc.b_to_a.corr, ref.max(axis=0), atol=1e-5)
    # latent 0 of A co-fires with nothing: its best partner comes from the closed form
    assert not cofire[0].any()
    assert cc.a_to_b.corr[0] < 0


def test_never_cofiring_pairs_follow_closed_form(small_case):
    a, b = small_case
    ref = dense_reference(a, b)
    ratio_a = a.mean(0) / a.std(0)
    ratio_b = b.mean(0) / b.std(0)
    silent = ((a != 0).T.astype(int) @ (b != 0).astype(int)) == 0
    assert silent.sum() > 10
    np.testing.assert_allclose(ref[silent], -np.outer(ratio_a, ratio_b)[silent], atol=1e-6)


def test_signed_codes_and_eligibility_masks():
    rng = np.random.default_rng(1)
    a = sparse_codes(rng, 400, 25, signed=True)
    b = sparse_codes(rng, 400, 20, signed=True)
    b[:, 3] = 0.0  # dead latent of B
    ref = dense_reference(a, b)
    eligible_a = np.ones(25, bool)
    eligible_a[[2, 7]] = False
    eligible_b = np.ones(20, bool)
    eligible_b[5] = False
    ca = collect_codes(chunks(a, 50), latent_major=True)
    cb = collect_codes(chunks(b, 50))
    cc = cross_correlation(ca, cb, eligible_a=eligible_a, eligible_b=eligible_b, max_pairs_per_tile=30)
    usable_b = eligible_b.copy()
    usable_b[3] = False
    masked = np.where(usable_b[None, :], ref, -np.inf)
    rows = np.flatnonzero(eligible_a)
    np.testing.assert_array_equal(cc.a_to_b.partner[rows], masked[rows].argmax(1))
    np.testing.assert_allclose(cc.a_to_b.corr[rows], masked[rows].max(1), atol=1e-5)
    assert (cc.a_to_b.partner[[2, 7]] == -1).all() and np.isnan(cc.a_to_b.corr[[2, 7]]).all()
    masked_cols = np.where(eligible_a[:, None], ref, -np.inf)
    cols = np.flatnonzero(usable_b)
    np.testing.assert_array_equal(cc.b_to_a.partner[cols], masked_cols[:, cols].argmax(0))
    assert cc.b_to_a.partner[3] == -1 and cc.b_to_a.partner[5] == -1
    assert not np.isin(cc.edge_b, [3, 5]).any() and not np.isin(cc.edge_a, [2, 7]).any()


def test_top_edges_per_latent_are_the_best():
    rng = np.random.default_rng(2)
    a = sparse_codes(rng, 500, 12)
    b = sparse_codes(rng, 500, 40)
    ref = dense_reference(a, b)
    cc = cross_correlation(
        collect_codes(chunks(a, 100), latent_major=True), collect_codes(chunks(b, 100)),
        edge_threshold=-1.0, max_edges_per_latent=3,
    )
    for i in range(12):
        got = np.sort(cc.edge_b[cc.edge_a == i])
        top3 = np.argsort(-ref[i])[:3]
        assert set(top3) <= set(got)  # plus possibly B latents whose best partner is i


def test_misaligned_codes_are_refused():
    rng = np.random.default_rng(3)
    ca = collect_codes([sp.csr_matrix(sparse_codes(rng, 10, 4))], latent_major=True)
    cb = collect_codes([sp.csr_matrix(sparse_codes(rng, 11, 4))])
    with pytest.raises(SaesimError, match="different numbers of tokens"):
        cross_correlation(ca, cb)


def test_plan_tiles_respects_cap():
    cost = np.array([5, 5, 5, 20, 1, 1, 1, 1])
    tiles = plan_tiles(cost, 10)
    assert tiles[0] == (0, 2) and (3, 4) in tiles
    assert all(cost[s:e].sum() <= 10 or e - s == 1 for s, e in tiles)
    assert tiles[-1][1] == len(cost)


def brute_force_max_matching(ea, eb, ec):
    """Maximum-total-weight matching over a few edges, by enumerating subsets."""
    best = 0.0
    n = len(ea)
    for mask in range(1 << n):
        chosen = [e for e in range(n) if mask >> e & 1]
        if len({ea[e] for e in chosen}) == len(chosen) and len({eb[e] for e in chosen}) == len(chosen):
            best = max(best, sum(ec[e] for e in chosen))
    return best


def test_one_to_one_assignment_is_optimal_and_greedy_is_valid():
    rng = np.random.default_rng(4)
    for _ in range(5):
        ea = rng.integers(0, 5, 12)
        eb = rng.integers(0, 6, 12)
        key = np.unique(ea * 10 + eb)
        ea, eb = key // 10, key % 10
        ec = rng.uniform(0.1, 1.0, ea.size)
        a, b, c = one_to_one_pairs(ea, eb, ec)
        assert len(set(a)) == a.size and len(set(b)) == b.size
        assert np.isclose(c.sum(), brute_force_max_matching(ea, eb, ec))
        ga, gb, gc = one_to_one_pairs(ea, eb, ec, method="greedy")
        assert len(set(ga)) == ga.size and len(set(gb)) == gb.size
        assert gc.sum() <= c.sum() + 1e-12
    # greedy takes the best edge first
    ga, gb, _ = one_to_one_pairs(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.9, 0.5, 0.8]), method="greedy")
    assert list(zip(ga, gb)) == [(0, 0)]
