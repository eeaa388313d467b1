"""Which latents of an SAE fire together, and whether matched latents of two seeds keep their partners.

For one SAE, its binary firing matrix ``F`` (tokens x latents, from sparse codes)
gives co-occurrence counts ``C = F^T F``: ``C[i, i]`` is how often latent ``i``
fires, ``C[i, j]`` how often ``i`` and ``j`` fire on the same token. Two latents
co-activate strongly when their Jaccard index ``C[i,j] / (C[i,i] + C[j,j] - C[i,j])``
is high. From it: the strongest pairs, clusters (connected components of the
graph of pairs at Jaccard >= a threshold), and each latent's ``m`` strongest
partners.

Across two seeds A and B, matched by the one-to-one decoder matching
``pi``: a latent ``i`` keeps its partners when ``pi(partners_A(i))`` overlaps
``partners_B(pi(i))``. The null relabels B's latents at random (a random
one-to-one map in place of ``pi``), which keeps each SAE's own co-activation
structure and destroys only the correspondence.

Memory: the counts are accumulated chunk by chunk as a sparse matrix; its
nonzeros are the co-firing pairs, at most ``min(n_latents^2, tokens * L0^2) / 2``
(``max_rows`` caps the tokens). Each chunk adds ``chunk_rows * L0^2`` transient
entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import scipy.sparse as sp

from saesim.errors import SaesimError

__all__ = [
    "CoactivationPairs",
    "cooccurrence_counts",
    "coactivation_pairs",
    "clusters",
    "top_partners",
    "partner_overlap",
]


def cooccurrence_counts(code_chunks: Iterable[sp.spmatrix], n_latents: int) -> tuple[sp.csr_matrix, int]:
    """``(C, n_tokens)``: co-firing counts ``C = F^T F`` (int64 CSR, symmetric) over all chunks.

    ``code_chunks`` are ``[tokens, n_latents]`` sparse code matrices (nonzero = fires).
    """
    total = sp.csr_matrix((n_latents, n_latents), dtype=np.int64)
    n_tokens = 0
    for chunk in code_chunks:
        chunk = sp.csr_matrix(chunk)
        if chunk.shape[1] != n_latents:
            raise SaesimError(f"co-activation: a code chunk has {chunk.shape[1]} latents, expected {n_latents}")
        fired = sp.csr_matrix((np.ones(chunk.nnz, dtype=np.int64), chunk.indices, chunk.indptr), shape=chunk.shape)
        fired.eliminate_zeros()
        total = total + (fired.T @ fired).tocsr()
        n_tokens += chunk.shape[0]
    total.sort_indices()
    return total, n_tokens


@dataclass(frozen=True)
class CoactivationPairs:
    """Latent pairs ``i < j`` that fired together at least ``min_count`` times."""

    i: np.ndarray  # int64
    j: np.ndarray  # int64
    count: np.ndarray  # int64: tokens on which both fire
    jaccard: np.ndarray  # float64
    fire_counts: np.ndarray  # int64 [n_latents]: tokens on which each latent fires
    n_tokens: int

    @property
    def n_latents(self) -> int:
        return int(self.fire_counts.size)

    def strongest(self, n: int) -> np.ndarray:
        """Indices of the ``n`` pairs with the highest Jaccard (ties by count, then by index)."""
        order = np.lexsort((self.j, self.i, -self.count, -self.jaccard))
        return order[:n]


def coactivation_pairs(counts: sp.csr_matrix, n_tokens: int, min_count: int = 5) -> CoactivationPairs:
    """Jaccard index of every co-firing pair with at least ``min_count`` shared tokens."""
    fire = np.asarray(counts.diagonal(), dtype=np.int64)
    upper = sp.triu(counts, k=1).tocoo()
    keep = upper.data >= min_count
    i, j, c = upper.row[keep].astype(np.int64), upper.col[keep].astype(np.int64), upper.data[keep].astype(np.int64)
    union = fire[i] + fire[j] - c
    jac = np.divide(c, union, out=np.zeros(c.size), where=union > 0)
    order = np.lexsort((j, i))
    return CoactivationPairs(i[order], j[order], c[order], jac[order], fire, int(n_tokens))


def clusters(pairs: CoactivationPairs, threshold: float) -> np.ndarray:
    """Cluster label of every latent: connected components of the pairs at Jaccard >= ``threshold``."""
    from scipy.sparse.csgraph import connected_components

    keep = pairs.jaccard >= threshold
    n = pairs.n_latents
    graph = sp.coo_matrix((np.ones(int(keep.sum())), (pairs.i[keep], pairs.j[keep])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def top_partners(pairs: CoactivationPairs, m: int) -> np.ndarray:
    """``[n_latents, m]``: each latent's ``m`` strongest partners by Jaccard (-1 where it has fewer)."""
    n = pairs.n_latents
    both_i = np.concatenate([pairs.i, pairs.j])
    both_j = np.concatenate([pairs.j, pairs.i])
    jac = np.concatenate([pairs.jaccard, pairs.jaccard])
    order = np.lexsort((both_j, -jac, both_i))  # by latent, best partner first, ties by index
    both_i, both_j = both_i[order], both_j[order]
    out = np.full((n, m), -1, dtype=np.int64)
    starts = np.searchsorted(both_i, np.arange(n))
    ends = np.searchsorted(both_i, np.arange(n), side="right")
    for latent in np.flatnonzero(ends > starts):
        take = both_j[starts[latent] : min(ends[latent], starts[latent] + m)]
        out[latent, : take.size] = take
    return out


def _overlap(partners_a: np.ndarray, partners_b: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray, mapping: np.ndarray) -> float:
    """Mean over ``a_idx`` of |mapping(partners_A(i)) ∩ partners_B(b)| / |partners_A(i)|.

    Latents of A without partners are left out. Vectorised over the matched latents:
    ``[len(a_idx), m, m]`` booleans (partner lists are short), no Python loop per latent.
    """
    pa = partners_a[a_idx]  # [N, m], -1 padded
    has = pa >= 0
    mapped = np.where(has, mapping[np.maximum(pa, 0)], -1)  # a partner the matching does not reach: -1
    pb = partners_b[b_idx]
    hits = ((mapped[:, :, None] == pb[:, None, :]) & (mapped[:, :, None] >= 0)).any(axis=2).sum(axis=1)
    sizes = has.sum(axis=1)
    keep = sizes > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(hits[keep] / sizes[keep]))


def partner_overlap(
    partners_a: np.ndarray,
    partners_b: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    n_null: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Do matched latents keep their co-activation partners? Observed overlap against random relabelling.

    ``rows[k]`` of A is matched to ``cols[k]`` of B (a one-to-one matching).
    Observed: mean over matched latents of A with partners of the fraction of
    their partners that, mapped through the matching, are partners of the
    matched latent in B. Null: the same with B's latents relabelled by a
    random permutation (``n_null`` draws). Returns observed, null mean and std,
    and the one-sided permutation p-value ``(1 + #null >= observed) / (1 + n_null)``.
    """
    n_a, n_b = partners_a.shape[0], partners_b.shape[0]
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    mapping = np.full(n_a, -1, dtype=np.int64)
    mapping[rows] = cols
    observed = _overlap(partners_a, partners_b, rows, cols, mapping)
    rng = np.random.default_rng(seed)
    null = np.empty(n_null)
    for t in range(n_null):
        relabel = rng.permutation(n_b)
        shuffled = np.where(mapping >= 0, relabel[np.maximum(mapping, 0)], -1)
        null[t] = _overlap(partners_a, partners_b, rows, relabel[cols], shuffled)
    return {
        "observed": observed,
        "null_mean": float(np.nanmean(null)),
        "null_std": float(np.nanstd(null)),
        "p_value": float((1 + np.sum(null >= observed)) / (1 + n_null)),
        "n_matched": int(rows.size),
    }


def first_eligible_rows(store, exclude_positions, exclude_norm_above: float | None, max_rows: int) -> np.ndarray:
    """The first ``max_rows`` store rows an SAE of this experiment may use (the exclusions of training)."""
    from saesim.stores.rows import eligible_rows

    return np.flatnonzero(eligible_rows(store, exclude_positions, exclude_norm_above))[:max_rows]


def sae_coactivation(sae, store, rows: np.ndarray, *, min_count: int, chunk_rows: int = 1024) -> CoactivationPairs:
    """Co-activation pairs of one SAE (loaded or a folder) over the given store rows."""
    from saesim.similarity.universality.codes import encode_sparse, resolve_sae

    sae = resolve_sae(sae)
    n = int(sae.W_dec.shape[0])
    counts, n_tokens = cooccurrence_counts(encode_sparse(sae, store, chunk_rows=chunk_rows, rows=rows), n)
    return coactivation_pairs(counts, n_tokens, min_count=min_count)


def sae_summary(pairs: CoactivationPairs, *, cluster_jaccard: float, n_top: int = 10) -> tuple[dict, list[dict]]:
    """One row of numbers per SAE, and its ``n_top`` strongest pairs."""
    labels = clusters(pairs, cluster_jaccard)
    sizes = np.bincount(labels)
    multi = sizes[sizes >= 2]
    firing = int((pairs.fire_counts > 0).sum())
    summary = {
        "n_tokens": pairs.n_tokens,
        "n_latents_firing": firing,
        "n_pairs": int(pairs.i.size),
        "pairs_per_firing_latent": 2 * pairs.i.size / max(firing, 1),
        "top_jaccard": float(pairs.jaccard.max()) if pairs.i.size else float("nan"),
        "n_pairs_jaccard_above": int((pairs.jaccard >= cluster_jaccard).sum()),
        "n_clusters": int(multi.size),
        "largest_cluster": int(multi.max()) if multi.size else 1,
        "latents_in_clusters": int(multi.sum()),
    }
    top = [
        {"latent_i": int(pairs.i[k]), "latent_j": int(pairs.j[k]), "jaccard": float(pairs.jaccard[k]),
         "count": int(pairs.count[k]), "fires_i": int(pairs.fire_counts[pairs.i[k]]),
         "fires_j": int(pairs.fire_counts[pairs.j[k]])}
        for k in pairs.strongest(n_top)
    ]
    return summary, top
