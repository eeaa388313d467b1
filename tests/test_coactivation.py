"""Co-activation counts, clusters and partner preservation on codes with planted structure."""

import numpy as np
import pytest
import scipy.sparse as sp

from saesim.analysis.coactivation import clusters, coactivation_pairs, cooccurrence_counts, partner_overlap, top_partners


def planted_codes(n_tokens=4000, n_groups=10, group_size=4, seed=0):
    """Latents in groups of ``group_size`` that always fire together; one group per token."""
    rng = np.random.default_rng(seed)
    n = n_groups * group_size
    groups = rng.integers(0, n_groups, n_tokens)
    codes = np.zeros((n_tokens, n))
    for g in range(group_size):
        codes[np.arange(n_tokens), groups * group_size + g] = rng.uniform(0.5, 2.0, n_tokens)
    return codes


def chunks(codes, size=512):
    for s in range(0, codes.shape[0], size):
        yield sp.csr_matrix(codes[s : s + size])


def test_counts_equal_dense_and_clusters_are_the_planted_groups():
    codes = planted_codes()
    counts, n_tokens = cooccurrence_counts(chunks(codes), codes.shape[1])
    fired = (codes > 0).astype(np.int64)
    np.testing.assert_array_equal(counts.toarray(), fired.T @ fired)
    assert n_tokens == codes.shape[0]
    pairs = coactivation_pairs(counts, n_tokens)
    assert np.allclose(pairs.jaccard, 1.0)  # only within-group pairs co-fire, and always together
    assert pairs.i.size == 10 * 6  # C(4, 2) pairs per group
    labels = clusters(pairs, threshold=0.5)
    np.testing.assert_array_equal(labels, np.arange(40) // 4)


def test_matched_latents_keep_partners_and_the_null_does_not():
    codes = planted_codes(seed=1)
    perm = np.random.default_rng(2).permutation(codes.shape[1])
    codes_b = np.empty_like(codes)
    codes_b[:, perm] = codes  # B's latent perm[i] is A's latent i
    pa = top_partners(coactivation_pairs(*cooccurrence_counts(chunks(codes), 40)), m=3)
    pb = top_partners(coactivation_pairs(*cooccurrence_counts(chunks(codes_b), 40)), m=3)
    res = partner_overlap(pa, pb, np.arange(40), perm, n_null=50)
    assert res["observed"] == pytest.approx(1.0)
    assert res["null_mean"] < 0.2
    assert res["p_value"] == pytest.approx(1 / 51)
    # a wrong matching (identity instead of perm) keeps partners only by chance
    wrong = partner_overlap(pa, pb, np.arange(40), np.arange(40), n_null=50)
    assert wrong["observed"] < 0.3 and wrong["p_value"] > 0.05


def test_independent_structure_sits_at_its_null():
    pa = top_partners(coactivation_pairs(*cooccurrence_counts(chunks(planted_codes(seed=3)), 40)), m=3)
    # B: groups made of other latents (latent i of B groups with different latents than in A)
    other = planted_codes(seed=4)[:, np.random.default_rng(5).permutation(40)]
    pb = top_partners(coactivation_pairs(*cooccurrence_counts(chunks(other), 40)), m=3)
    res = partner_overlap(pa, pb, np.arange(40), np.arange(40), n_null=200, seed=1)
    assert abs(res["observed"] - res["null_mean"]) < 3 * res["null_std"] + 0.05


def test_top_partners_order_and_padding():
    counts = sp.csr_matrix(np.array([[10, 8, 2, 0], [8, 9, 0, 0], [2, 0, 5, 0], [0, 0, 0, 3]]))
    pairs = coactivation_pairs(counts, 20, min_count=1)
    partners = top_partners(pairs, m=2)
    np.testing.assert_array_equal(partners[0], [1, 2])  # 8/11 > 2/13
    np.testing.assert_array_equal(partners[3], [-1, -1])
    strongest = pairs.strongest(1)
    assert (pairs.i[strongest][0], pairs.j[strongest][0]) == (0, 1)
