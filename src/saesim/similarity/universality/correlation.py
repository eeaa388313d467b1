"""Exact Pearson correlation between every latent of SAE A and every latent of SAE B.

Notation: ``n`` aligned tokens; ``a_ti`` is latent i of A on token t, ``b_tj``
latent j of B.  With per-latent means ``mu`` and population standard
deviations ``sd``,

    corr_ij = (S_ij / n - mu_i mu_j) / (sd_i sd_j),    S_ij = sum_t a_ti b_tj.

``S_ij`` is nonzero only for pairs that *co-fire* (are both nonzero on some
token), and the sparse product ``A^T B`` computes exactly those, at a cost of
O(sum over tokens of k_a(t) k_b(t)) multiply-adds, not O(n n_a n_b).

A pair that never co-fires has ``S_ij = 0`` and the closed form
``corr_ij = -r_i r_j`` with ``r = mu / sd``.  For latent i the best such
"silent" partner is the j with the smallest ``r_j`` (largest when ``r_i < 0``)
among those it never co-fires with; for nonnegative codes it is a negative
correlation, so the best partner is a co-firing one unless a latent co-fires
with nothing.  Both are computed, so each latent's best partner is exact.

Memory bound.  The pair accumulator is never held whole: over 1M tokens two
32k-latent SAEs co-fire on a few hundred million distinct pairs, more than the
codes themselves.  Instead the codes are held once (A latent-major, B
token-major, 12 bytes per nonzero each) and ``A^T B`` is evaluated in tiles of
A latents, each tile planned so that an upper bound on its co-firing pairs,
``min(n_b, sum over the tokens where i fires of k_b(t))`` summed over the tile,
is at most ``max_pairs_per_tile`` (one latent per tile at least).  A tile costs
about 40 bytes per pair at its peak, so the total is

    12 (nnz_a + nnz_b) + 8 nnz_b + 8 n_tokens + ~40 max_pairs_per_tile  bytes

(the ``8 nnz_b`` is a masked copy of B's values, made when some B latents are
excluded), whatever the number of distinct co-firing pairs.  Measured
(benchmarks/bench_universality.py): 32k x 32k latents, 1M tokens, 32 active
latents per token, 270M co-firing pairs, default 8M-pair tiles: 1.6 GB peak
RSS for the whole comparison, 64 s for the correlation on 2 shared cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from saesim.errors import SaesimError
from saesim.similarity.universality.codes import LatentStats, SparseCodes


@dataclass
class BestPartners:
    """Each latent's most correlated latent on the other side (many-to-one).

    ``partner[i]`` is -1 and ``corr[i]`` NaN for latents that were excluded
    (dead, constant, filtered) or have no eligible partner.
    """

    partner: np.ndarray  # int64 [n]
    corr: np.ndarray  # float64 [n]


@dataclass
class CrossCorrelation:
    """Result of :func:`cross_correlation`."""

    a_to_b: BestPartners  # for each latent of A, its best partner in B
    b_to_a: BestPartners  # for each latent of B, its best partner in A
    edge_a: np.ndarray  # candidate one-to-one edges: A latent ...
    edge_b: np.ndarray  # ... B latent ...
    edge_corr: np.ndarray  # ... and their correlation (>= edge_threshold)
    n_tokens: int
    n_cofiring_pairs: int  # distinct (i, j) pairs with S_ij != 0 among eligible latents
    n_tiles: int
    max_tile_pairs: int  # largest number of co-firing pairs held at once


def standardization(stats: LatentStats, eligible: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(usable, mean, 1/sd) per latent; usable = eligible and not constant (sd > 0)."""
    mean = stats.mean
    sd = stats.std
    usable = sd > 0
    if eligible is not None:
        usable &= np.asarray(eligible, dtype=bool)
    inv_sd = np.full(sd.shape, np.nan)
    np.divide(1.0, sd, out=inv_sd, where=usable)
    return usable, mean, inv_sd


def plan_tiles(cost: np.ndarray, max_cost: int) -> list[tuple[int, int]]:
    """Split ``len(cost)`` items into contiguous tiles whose summed cost is <= max_cost.

    A single item costing more than ``max_cost`` gets a tile of its own.
    """
    bounds = []
    csum = np.cumsum(cost, dtype=np.float64)
    start = 0
    n = len(cost)
    while start < n:
        base = csum[start - 1] if start else 0.0
        stop = int(np.searchsorted(csum, base + max_cost, side="right"))
        stop = min(max(stop, start + 1), n)
        bounds.append((start, stop))
        start = stop
    return bounds


def _segment_argmax(values: np.ndarray, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and position of the first maximum of each CSR segment (-inf / -1 when empty)."""
    counts = np.diff(indptr)
    best = np.full(counts.size, -np.inf)
    where = np.full(counts.size, -1, dtype=np.int64)
    nonempty = counts > 0
    if not nonempty.any():
        return best, where
    best[nonempty] = np.maximum.reduceat(values, indptr[:-1][nonempty])
    hits = np.flatnonzero(values == np.repeat(best, counts))
    hit_seg = np.searchsorted(indptr, hits, side="right") - 1
    first = np.ones(hits.size, dtype=bool)
    first[1:] = hit_seg[1:] != hit_seg[:-1]
    where[hit_seg[first]] = hits[first]
    return best, where


def _top_edges_per_row(rows: np.ndarray, cols: np.ndarray, corr: np.ndarray, max_per_row: int):
    """Keep each row's ``max_per_row`` highest-correlation edges (rows need not be sorted)."""
    if rows.size == 0:
        return rows, cols, corr
    counts = np.bincount(rows)
    if counts.max() <= max_per_row:
        return rows, cols, corr
    order = np.lexsort((-corr, rows))
    rows_s = rows[order]
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    rank = np.arange(rows_s.size) - starts[rows_s]
    keep = order[rank < max_per_row]
    return rows[keep], cols[keep], corr[keep]


def best_silent_partners(
    ratio_x: np.ndarray,
    usable_x: np.ndarray,
    ratio_y: np.ndarray,
    usable_y: np.ndarray,
    cofire_pattern: Callable[[np.ndarray, np.ndarray], sp.spmatrix],
    cofire_counts: np.ndarray | None = None,
    first_candidates: int = 64,
) -> BestPartners:
    """Best partner of each x latent among the y latents it never co-fires with.

    Such a pair has ``corr = -ratio_x[i] * ratio_y[j]`` (``ratio = mean / sd``).
    Candidates are scanned in order of increasing ``ratio_y`` (decreasing for
    latents with ``ratio_x < 0``), in blocks that grow 4x; for each block
    ``cofire_pattern(x_latents, y_candidates)`` gives the co-firing pattern
    ``[len(x_latents), len(y_candidates)]`` and the first candidate outside it wins.
    Latents whose ``cofire_counts`` (number of usable y latents they co-fire
    with) equals the number of usable y latents have no silent partner and are skipped.
    """
    n_x = ratio_x.shape[0]
    partner = np.full(n_x, -1, dtype=np.int64)
    corr = np.full(n_x, np.nan)
    y_ok = np.flatnonzero(usable_y)
    if y_ok.size == 0:
        return BestPartners(partner, corr)
    ascending = y_ok[np.argsort(ratio_y[y_ok], kind="stable")]
    if cofire_counts is not None:
        usable_x = usable_x & (cofire_counts < y_ok.size)
    for order, mask in (
        (ascending, usable_x & (ratio_x >= 0)),
        (ascending[::-1], usable_x & (ratio_x < 0)),
    ):
        pending = np.flatnonzero(mask)
        pos, block = 0, first_candidates
        while pending.size and pos < order.size:
            cand = order[pos : pos + block]
            cofires = sp.csr_matrix(cofire_pattern(pending, cand)).toarray() != 0
            free = ~cofires
            found = free.any(axis=1)
            chosen = cand[free.argmax(axis=1)[found]]
            got = pending[found]
            partner[got] = chosen
            corr[got] = -ratio_x[got] * ratio_y[chosen]
            pending = pending[~found]
            pos += block
            block *= 4
    return BestPartners(partner, corr)


def _merge_best(cofiring: BestPartners, silent: BestPartners) -> BestPartners:
    c_co = np.where(cofiring.partner >= 0, cofiring.corr, -np.inf)
    c_si = np.where(silent.partner >= 0, silent.corr, -np.inf)
    take_silent = c_si > c_co
    partner = np.where(take_silent, silent.partner, cofiring.partner)
    corr = np.where(take_silent, c_si, c_co)
    corr[partner < 0] = np.nan
    return BestPartners(partner.astype(np.int64), corr)


def cross_correlation(
    codes_a: SparseCodes,
    codes_b: SparseCodes,
    *,
    eligible_a: np.ndarray | None = None,
    eligible_b: np.ndarray | None = None,
    edge_threshold: float = 0.1,
    max_edges_per_latent: int = 16,
    max_pairs_per_tile: int = 8_000_000,
) -> CrossCorrelation:
    """Exact Pearson correlation of every latent of A with every latent of B, reduced on the fly.

    Returns each latent's best partner in both directions (exact, over eligible
    latents; ties go to the first maximum found) and the candidate edges for a
    one-to-one pairing: for each A latent its ``max_edges_per_latent``
    best-correlated B latents with ``corr >= edge_threshold``, plus each B
    latent's best A partner when it clears the threshold.  Latents that are not
    eligible, dead or constant are excluded on both sides.
    """
    if codes_a.n_tokens != codes_b.n_tokens:
        raise SaesimError(
            f"codes cover different numbers of tokens (A: {codes_a.n_tokens}, B: {codes_b.n_tokens}); align them first"
        )
    n = codes_a.n_tokens
    n_a, n_b = codes_a.n_latents, codes_b.n_latents
    usable_a, mean_a, inv_sd_a = standardization(codes_a.stats, eligible_a)
    usable_b, mean_b, inv_sd_b = standardization(codes_b.stats, eligible_b)
    ratio_a = np.where(usable_a, mean_a * np.nan_to_num(inv_sd_a), np.nan)
    ratio_b = np.where(usable_b, mean_b * np.nan_to_num(inv_sd_b), np.nan)

    a_lat = codes_a.as_latent_major().matrix  # [n_a, n]
    b_tok = codes_b.as_token_major().matrix  # [n, n_b]
    if usable_b.all():
        b_use = b_tok
    else:  # zero the values of unusable B latents: the sparse product drops their (zero) sums
        b_use = sp.csr_matrix(
            (b_tok.data * usable_b[b_tok.indices], b_tok.indices, b_tok.indptr), shape=b_tok.shape, copy=False
        )
    # corr = S * (inv_sd_a / n) * inv_sd_b - ratio_a * ratio_b on co-firing pairs
    scale_a = np.nan_to_num(inv_sd_a) / n
    scale_b = np.nan_to_num(inv_sd_b)
    ratio_a0 = np.nan_to_num(ratio_a)
    ratio_b0 = np.nan_to_num(ratio_b)

    # upper bound on the co-firing pairs of each A latent, for tile planning
    b_row_nnz = np.diff(b_use.indptr).astype(np.float64)
    a_pattern = sp.csr_matrix(
        (np.ones(a_lat.nnz, dtype=np.float32), a_lat.indices, a_lat.indptr), shape=a_lat.shape, copy=False
    )
    pair_bound = np.minimum(a_pattern @ b_row_nnz, float(usable_b.sum()))
    del a_pattern
    rows_todo = np.flatnonzero(usable_a & (pair_bound > 0))
    tiles = plan_tiles(pair_bound[rows_todo], max_pairs_per_tile)

    row_best = BestPartners(np.full(n_a, -1, dtype=np.int64), np.full(n_a, np.nan))
    col_corr = np.full(n_b, -np.inf)
    col_partner = np.full(n_b, -1, dtype=np.int64)
    row_cofire = np.zeros(n_a, dtype=np.int64)  # usable partners each latent co-fires with
    col_cofire = np.zeros(n_b, dtype=np.int64)
    edges_a, edges_b, edges_c = [], [], []
    n_pairs_total = 0
    max_tile_pairs = 0
    for start, stop in tiles:
        tile_rows = rows_todo[start:stop]
        prod = (a_lat[tile_rows] @ b_use).tocsr()  # S for the tile, [t, n_b], float64
        counts = np.diff(prod.indptr)
        cols = prod.indices
        corr = prod.data
        corr *= np.repeat(scale_a[tile_rows], counts)
        corr *= scale_b[cols]
        corr -= np.repeat(ratio_a0[tile_rows], counts) * ratio_b0[cols]
        n_pairs_total += int(corr.size)
        max_tile_pairs = max(max_tile_pairs, int(corr.size))
        row_cofire[tile_rows] = counts
        col_cofire += np.bincount(cols, minlength=n_b)

        best, pos = _segment_argmax(corr, prod.indptr)
        ok = pos >= 0
        row_best.partner[tile_rows[ok]] = cols[pos[ok]]
        row_best.corr[tile_rows[ok]] = best[ok]

        # column maxima of the tile; ties go to the smallest A latent, as a dense argmax would
        tile_col_max = np.full(n_b, -np.inf)
        np.maximum.at(tile_col_max, cols, corr)
        hits = np.flatnonzero(corr == tile_col_max[cols])
        tile_col_arg = np.full(n_b, np.iinfo(np.int64).max)
        np.minimum.at(tile_col_arg, cols[hits], np.searchsorted(prod.indptr, hits, side="right") - 1)
        better = tile_col_max > col_corr
        col_corr[better] = tile_col_max[better]
        col_partner[better] = tile_rows[tile_col_arg[better]]

        keep = np.flatnonzero(corr >= edge_threshold)
        keep_rows = np.searchsorted(prod.indptr, keep, side="right") - 1
        er, ec, ecorr = _top_edges_per_row(keep_rows, cols[keep], corr[keep], max_edges_per_latent)
        edges_a.append(tile_rows[er])
        edges_b.append(ec.astype(np.int64))
        edges_c.append(ecorr)
        del prod, cols, corr, hits, keep

    col_best = BestPartners(col_partner, np.where(col_partner >= 0, col_corr, np.nan))

    # partners among never-co-firing pairs (closed form), both directions
    # candidates are the rarest latents first, so these products are cheap
    def cofire_ab(a_rows: np.ndarray, b_cands: np.ndarray) -> sp.spmatrix:
        return (a_lat @ b_tok[:, b_cands]).tocsr()[a_rows]

    def cofire_ba(b_cols: np.ndarray, a_cands: np.ndarray) -> sp.spmatrix:
        return (a_lat[a_cands] @ b_tok).tocsc()[:, b_cols].T

    silent_a = best_silent_partners(ratio_a, usable_a, ratio_b, usable_b, cofire_ab, row_cofire)
    silent_b = best_silent_partners(ratio_b, usable_b, ratio_a, usable_a, cofire_ba, col_cofire)
    a_to_b = _merge_best(row_best, silent_a)
    b_to_a = _merge_best(col_best, silent_b)

    # candidate edges: per-A top lists plus each B latent's best partner
    ea = np.concatenate(edges_a) if edges_a else np.zeros(0, np.int64)
    eb = np.concatenate(edges_b) if edges_b else np.zeros(0, np.int64)
    ec = np.concatenate(edges_c) if edges_c else np.zeros(0)
    extra = np.flatnonzero((b_to_a.partner >= 0) & (b_to_a.corr >= edge_threshold))
    ea = np.concatenate([ea, b_to_a.partner[extra]])
    eb = np.concatenate([eb, extra.astype(np.int64)])
    ec = np.concatenate([ec, b_to_a.corr[extra]])
    _, first = np.unique(ea * n_b + eb, return_index=True)
    return CrossCorrelation(
        a_to_b=a_to_b,
        b_to_a=b_to_a,
        edge_a=ea[first].astype(np.int64),
        edge_b=eb[first].astype(np.int64),
        edge_corr=ec[first],
        n_tokens=n,
        n_cofiring_pairs=n_pairs_total,
        n_tiles=len(tiles),
        max_tile_pairs=max_tile_pairs,
    )


def one_to_one_pairs(
    edge_a: np.ndarray,
    edge_b: np.ndarray,
    edge_corr: np.ndarray,
    *,
    method: str = "assignment",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A one-to-one pairing of A and B latents over the candidate edges, sorted by A latent.

    ``"assignment"``: maximum total correlation (scipy's sparse LAPJV,
    ``min_weight_full_bipartite_matching``).  Each A latent gets a private dummy
    partner of weight 2 (``corr = 0``) and real edges weigh ``2 - corr``, so a
    full matching always exists and its minimum weight is the maximum total
    correlation over real edges; A latents matched to their dummy stay unpaired.
    ``"greedy"``: edges in decreasing correlation (ties: smaller A, then B index)
    are taken when both ends are still free.
    """
    edge_a = np.asarray(edge_a, dtype=np.int64)
    edge_b = np.asarray(edge_b, dtype=np.int64)
    edge_corr = np.asarray(edge_corr, dtype=np.float64)
    if edge_a.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0)
    if method == "greedy":
        order = np.lexsort((edge_b, edge_a, -edge_corr))
        used_a, used_b = set(), set()
        take = []
        for e in order:
            a, b = int(edge_a[e]), int(edge_b[e])
            if a not in used_a and b not in used_b:
                used_a.add(a)
                used_b.add(b)
                take.append(e)
        take = np.array(take, dtype=np.int64)
        take = take[np.argsort(edge_a[take], kind="stable")]
        return edge_a[take], edge_b[take], edge_corr[take]
    if method != "assignment":
        raise SaesimError(f"one-to-one method must be 'assignment' or 'greedy', got {method!r}")
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    left, li = np.unique(edge_a, return_inverse=True)
    right, ri = np.unique(edge_b, return_inverse=True)
    n_left, n_right = left.size, right.size
    rows = np.concatenate([li, np.arange(n_left)])
    cols = np.concatenate([ri, n_right + np.arange(n_left)])
    weights = np.concatenate([2.0 - edge_corr, np.full(n_left, 2.0)])
    graph = sp.csr_matrix((weights, (rows, cols)), shape=(n_left, n_right + n_left))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = col_ind < n_right
    a = left[row_ind[real]]
    b = right[col_ind[real]]
    # look the correlation up on the edge list
    key = edge_a * (edge_b.max() + 1) + edge_b
    order = np.argsort(key)
    pos = order[np.searchsorted(key[order], a * (edge_b.max() + 1) + b)]
    return a, b, edge_corr[pos]
