"""Stage 2, matching: one-to-one pairings of two SAE dictionaries' latents by |cos|.

Exact Hungarian on the dense |cos| matrix when a float64 copy of it fits the
memory budget; otherwise the optimal assignment restricted to each latent's
top-m candidates from one bounded-memory scan (:mod:`saesim.similarity.scan`).
:func:`_max_and_matching` is that choice, made once for every caller. Shared
latents (Paulo & Belrose 2025) compare a decoder and an encoder matching.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saesim.errors import SaesimError

from saesim.similarity.options import ComparisonOptions
from saesim.similarity.scan import (
    DEFAULT_MEMORY_BUDGET_MB,
    DEFAULT_TOP_M,
    MaxCosineResult,
    TopCosines,
    _as_matrix,
    _check_pair,
    _max_result,
    _max_result_from_dense,
    _max_result_from_top,
    abs_cosine_matrix,
    normalize_rows,
    top_abs_cosines,
)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchingResult:
    """A one-to-one matching of A's latents to B's latents maximising total |cos|.

    ``rows[k]`` (a row of A) is matched to ``cols[k]`` (a row of B) with
    |cos| ``cos[k]``; there are ``min(n_a, n_b)`` pairs, sorted by ``rows``.
    ``exact`` is True when the assignment was solved on the full |cos| matrix
    (Hungarian), False when restricted to each latent's top-m candidates.
    """

    rows: np.ndarray  # int64 [k]
    cols: np.ndarray  # int64 [k]
    cos: np.ndarray  # float32 [k]
    exact: bool
    mean_matched_cos: float
    n_a: int
    n_b: int

    def partner_of_a(self) -> np.ndarray:
        """int64 [n_a]: the row of B matched to each row of A, -1 where unmatched."""
        out = np.full(self.n_a, -1, dtype=np.int64)
        out[self.rows] = self.cols
        return out

    def cos_of_a(self) -> np.ndarray:
        """float32 [n_a]: |cos| of each row of A to its partner, NaN where unmatched."""
        out = np.full(self.n_a, np.nan, dtype=np.float32)
        out[self.rows] = self.cos
        return out


@dataclass(frozen=True)
class SharedLatentsResult:
    """Latents shared in the sense of Paulo & Belrose (2025).

    ``mask[i]`` is True when row ``i`` of A has the same partner in B under the
    decoder matching and under the encoder matching, with both |cos| at or
    above the threshold. ``frac`` is ``mask.sum() / min(n_a, n_b)``.
    """

    frac: float
    mask: np.ndarray  # bool [n_a]
    threshold: float


# --------------------------------------------------------------------------
# One-to-one matching
# --------------------------------------------------------------------------


def _dense_fits(n_a: int, n_b: int, memory_budget_mb: float) -> bool:
    """Whether a float64 cost matrix (what scipy's Hungarian works on) fits the budget.

    Three quarters of the budget go to the matrix, the rest to the tiles that fill it.
    """
    return 8.0 * n_a * n_b <= 0.75 * float(memory_budget_mb) * 2**20


def _matching_result(rows, cols, cos, exact, n_a, n_b) -> MatchingResult:
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    cos = np.asarray(cos, dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    rows, cols, cos = rows[order], cols[order], cos[order]
    k = min(n_a, n_b)
    mean = float(cos.sum(dtype=np.float64) / k) if k else float("nan")
    return MatchingResult(rows=rows, cols=cols, cos=cos, exact=exact, mean_matched_cos=mean, n_a=n_a, n_b=n_b)


@functools.cache
def _linear_sum_assignment():
    """scipy's ``linear_sum_assignment``, loaded from its own compiled module.

    Importing ``scipy.optimize`` loads all of scipy's optimisers: ~0.7 s of CPU in
    each of the ~200 jobs of the default run that match latents. The function is
    the compiled ``scipy.optimize._lsap`` (needs only numpy), so it is loaded alone
    when ``scipy.optimize`` is not imported yet.
    """
    import importlib.machinery
    import importlib.util
    import sys

    import scipy

    if "scipy.optimize" not in sys.modules:
        name = "scipy.optimize._lsap"
        for path in sorted((Path(scipy.__file__).parent / "optimize").glob("_lsap.*")):
            if path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                loader = importlib.machinery.ExtensionFileLoader(name, str(path))
                module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
                loader.exec_module(module)
                return module.linear_sum_assignment
    from scipy.optimize import linear_sum_assignment  # imported already, or another scipy layout

    return linear_sum_assignment


def _hungarian_on(cos: np.ndarray) -> MatchingResult:
    """Exact Hungarian matching on a full float64 |cos| matrix with n_a <= n_b.

    The matrix is negated in place for scipy (which minimises) and restored,
    so no second float64 copy is made.
    """
    linear_sum_assignment = _linear_sum_assignment()
    n_a, n_b = cos.shape
    np.negative(cos, out=cos)
    try:
        rows, cols = linear_sum_assignment(cos)
    finally:
        np.negative(cos, out=cos)
    return _matching_result(rows, cols, cos[rows, cols], True, n_a, n_b)


def _dense_max_and_matching(a, b, memory_budget_mb, device) -> tuple[MaxCosineResult, MatchingResult]:
    """Best matches both ways and exact Hungarian from one float64 |cos| matrix.

    The matrix is built wide (the smaller SAE as rows), as scipy would
    otherwise copy a tall one; roles are swapped back in the results.
    """
    if a.shape[0] > b.shape[0]:
        mx, m = _dense_max_and_matching(b, a, memory_budget_mb, device)
        swapped = _max_result(mx.best_a_for_b, mx.best_cos_b, mx.best_b_for_a, mx.best_cos_a)
        return swapped, _matching_result(m.cols, m.rows, m.cos, True, a.shape[0], b.shape[0])
    cos = abs_cosine_matrix(a, b, dtype=np.float64, memory_budget_mb=max(memory_budget_mb * 0.25, 1.0), device=device)
    return _max_result_from_dense(cos), _hungarian_on(cos)


def _max_and_matching(
    a: np.ndarray, b: np.ndarray, memory_budget_mb: float, top_m: int, device: str
) -> tuple[MaxCosineResult, MatchingResult]:
    """Best matches both ways and the one-to-one matching, from one dense matrix or one scan.

    Dense (exact Hungarian) when a float64 |cos| matrix fits the budget
    (:func:`_dense_fits`); otherwise one :func:`top_abs_cosines` pass with
    ``top_m`` candidates gives the best matches and the sparse matching.
    ``a`` and ``b`` are checked 2-D arrays (as :func:`_as_matrix` returns).
    """
    if _dense_fits(a.shape[0], b.shape[0], memory_budget_mb):
        return _dense_max_and_matching(a, b, memory_budget_mb, device)
    top = top_abs_cosines(a, b, top_m, memory_budget_mb=memory_budget_mb, device=device)
    return _max_result_from_top(top), _sparse_matching(a, b, top)


def _hungarian(a, b, memory_budget_mb, device) -> MatchingResult:
    return _dense_max_and_matching(a, b, memory_budget_mb, device)[1]


def _pair_cosines(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """|cos| between ``a[rows[k]]`` and ``b[cols[k]]`` for each k, float32."""
    out = np.empty(len(rows), dtype=np.float32)
    for s in range(0, len(rows), chunk):
        x = normalize_rows(a[rows[s : s + chunk]])
        y = normalize_rows(b[cols[s : s + chunk]])
        out[s : s + chunk] = np.abs(np.einsum("ij,ij->i", x, y))
    return out


def _greedy_completion(n_a, n_b, ea, eb, ev):
    """A full matching built greedily from candidate edges, best |cos| first.

    Latents left over once the candidates are used up are paired in index
    order. Returns (rows, cols) of min(n_a, n_b) pairs.
    """
    order = np.argsort(-ev, kind="stable")
    used_a = bytearray(n_a)  # plain Python containers: this loop is per edge
    used_b = bytearray(n_b)
    rows, cols = [], []
    k_max = min(n_a, n_b)
    for i, j in zip(ea[order].tolist(), eb[order].tolist()):
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = 1
            rows.append(i)
            cols.append(j)
            if len(rows) == k_max:  # the smaller side is matched: no further edge can be added
                break
    free_a = np.flatnonzero(np.frombuffer(bytes(used_a), dtype=np.uint8) == 0)
    free_b = np.flatnonzero(np.frombuffer(bytes(used_b), dtype=np.uint8) == 0)
    k = min(len(free_a), len(free_b))
    rows = np.concatenate([np.asarray(rows, dtype=np.int64), free_a[:k]])
    cols = np.concatenate([np.asarray(cols, dtype=np.int64), free_b[:k]])
    return rows, cols


def _sparse_matching(a, b, top: TopCosines) -> MatchingResult:
    """Optimal assignment restricted to each latent's top-m candidates (both directions).

    A greedy full matching is added to the candidate edges, so a full matching
    always exists in the sparse graph; the solver only uses its edges where the
    candidates alone cannot match everyone.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    n_a, n_b = a.shape[0], b.shape[0]
    m = top.m
    ia = np.repeat(np.arange(n_a, dtype=np.int64), m)
    ja = top.idx_a.reshape(-1)
    va = top.val_a.reshape(-1)
    jb = np.repeat(np.arange(n_b, dtype=np.int64), m)
    ib = top.idx_b.reshape(-1)
    vb = top.val_b.reshape(-1)
    ea = np.concatenate([ia[ja >= 0], ib[ib >= 0]])
    eb = np.concatenate([ja[ja >= 0], jb[ib >= 0]])
    ev = np.concatenate([va[ja >= 0], vb[ib >= 0]]).astype(np.float64)
    # de-duplicate edges found from both sides
    key = ea * n_b + eb
    key, first = np.unique(key, return_index=True)
    ea, eb, ev = ea[first], eb[first], ev[first]

    g_rows, g_cols = _greedy_completion(n_a, n_b, ea, eb, ev)
    g_key = g_rows * n_b + g_cols
    # greedy edges not among the candidates (key is sorted and unique; np.isin hashes, slowly here)
    pos = np.minimum(np.searchsorted(key, g_key), max(len(key) - 1, 0))
    extra = key[pos] != g_key if len(key) else np.ones(len(g_key), dtype=bool)
    if extra.any():
        ea = np.concatenate([ea, g_rows[extra]])
        eb = np.concatenate([eb, g_cols[extra]])
        ev = np.concatenate([ev, _pair_cosines(a, b, g_rows[extra], g_cols[extra]).astype(np.float64)])

    # weights must be non-zero: minimise (2 - |cos|), all full matchings have the same size
    graph = sp.csr_array((2.0 - ev, (ea, eb)), shape=(n_a, n_b))
    try:
        rows, cols = min_weight_full_bipartite_matching(graph)
    except ValueError:  # cannot happen with the greedy edges; keep the greedy matching
        rows, cols = g_rows, g_cols
    cos = 2.0 - np.asarray(graph[rows, cols]).ravel()
    return _matching_result(rows, cols, cos, False, n_a, n_b)


def one_to_one_matching(
    a: Any,
    b: Any,
    *,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    top_m: int = DEFAULT_TOP_M,
    device: str = "cpu",
    candidates: TopCosines | None = None,
    exact: bool | None = None,
) -> MatchingResult:
    """One-to-one matching of A's rows to B's rows maximising the summed |cos|.

    Exact Hungarian (``scipy.optimize.linear_sum_assignment``) on the dense
    |cos| matrix when a float64 copy of it fits in ``memory_budget_mb``;
    otherwise the optimal assignment among each latent's ``top_m`` candidates
    in both directions (``min_weight_full_bipartite_matching``). ``exact``
    forces one or the other; ``candidates`` reuses a finished scan.
    """
    a = _as_matrix(a, "A")
    b = _as_matrix(b, "B")
    _check_pair(a, b)
    n_a, n_b = a.shape[0], b.shape[0]
    if exact is None:
        exact = _dense_fits(n_a, n_b, memory_budget_mb)
    if exact:
        return _hungarian(a, b, memory_budget_mb, device)
    if candidates is None:
        candidates = top_abs_cosines(a, b, top_m, memory_budget_mb=memory_budget_mb, device=device)
    return _sparse_matching(a, b, candidates)


# --------------------------------------------------------------------------
# Shared latents
# --------------------------------------------------------------------------


def _encoder_rows(enc: Any, n: int, d: int, name: str) -> np.ndarray:
    """Encoder directions as rows: ``W_enc`` is [d, n_latents], so its transpose."""
    e = _as_matrix(enc, name)
    if e.shape != (d, n):
        raise SaesimError(f"{name}: W_enc should have shape [d_in={d}, d_sae={n}], got {list(e.shape)}")
    return e.T


def shared_latents(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any,
    enc_b: Any,
    *,
    options: ComparisonOptions | None = None,
    dec_matching: MatchingResult | None = None,
    enc_matching: MatchingResult | None = None,
    **overrides: Any,
) -> SharedLatentsResult:
    """Latents shared by two SAEs, as defined by Paulo & Belrose (2025).

    Decoder rows (``W_dec`` [n, d]) and encoder directions (columns of
    ``W_enc`` [d, n]) are matched one-to-one separately; a latent of A is
    shared when both matchings give it the same partner in B and both |cos|
    are >= the ``shared_threshold`` of ``options`` (a :class:`ComparisonOptions`,
    its defaults when None; single fields of it as keywords override it, as do its
    budget, top-m and device for the matchings). ``frac`` counts over the smaller SAE's latents.
    """
    o = ComparisonOptions.with_overrides(options, overrides, "shared_latents")
    threshold = o.shared_threshold
    dec_a = _as_matrix(dec_a, "A decoder")
    dec_b = _as_matrix(dec_b, "B decoder")
    _check_pair(dec_a, dec_b)
    n_a, n_b, d = dec_a.shape[0], dec_b.shape[0], dec_a.shape[1]
    ea = _encoder_rows(enc_a, n_a, d, "A encoder")
    eb = _encoder_rows(enc_b, n_b, d, "B encoder")
    kw = dict(memory_budget_mb=o.memory_budget_mb, top_m=o.top_m, device=o.device)
    if dec_matching is None:
        dec_matching = one_to_one_matching(dec_a, dec_b, **kw)
    if enc_matching is None:
        enc_matching = one_to_one_matching(ea, eb, **kw)
    pd, cd = dec_matching.partner_of_a(), dec_matching.cos_of_a()
    pe, ce = enc_matching.partner_of_a(), enc_matching.cos_of_a()
    with np.errstate(invalid="ignore"):
        mask = (pd >= 0) & (pd == pe) & (cd >= threshold) & (ce >= threshold)
    return SharedLatentsResult(frac=float(mask.sum() / min(n_a, n_b)), mask=mask, threshold=float(threshold))


