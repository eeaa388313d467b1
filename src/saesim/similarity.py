"""Similarity between two SAE dictionaries, in memory bounded by a budget.

An SAE dictionary here is a 2-D array with one latent per row (a decoder
``W_dec`` of shape ``[n_latents, d]``, or the transposed encoder ``W_enc.T``).
Every function takes numpy arrays and returns numpy arrays or plain Python
values; torch is used inside for the matrix products, on CPU or CUDA.

The |cosine| matrix between two dictionaries of 65,536 latents holds 4.3e9
numbers (17 GB in float32), so nothing here builds it unless it fits the memory
budget. Instead :func:`top_abs_cosines` walks over tiles of it once and keeps,
for each latent on either side, its ``m`` best partners on the other side.
Mean max |cos|, best-match fractions and the candidate lists of the sparse
one-to-one matching all come from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from saesim.errors import SaesimError

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
DEFAULT_MEMORY_BUDGET_MB = 1024
DEFAULT_TOP_M = 16
# The random draws of the matching baseline hold at most this many latents a
# side (n_a' n_b' <= DRAW_SIZE^2); larger shapes are drawn smaller and their
# matched |cos| transferred (see random_decoder_baseline).
DEFAULT_BASELINE_DRAW_SIZE = 2048
# Largest tile side. Bigger tiles do not make the matrix product faster on
# CPU, and the per-tile reductions touch less memory with tiles this size.
MAX_TILE = 4096

__all__ = [
    "DEFAULT_BASELINE_DRAW_SIZE",
    "DEFAULT_THRESHOLDS",
    "MatchingResult",
    "MaxCosineResult",
    "NULL_METRICS",
    "SharedLatentsResult",
    "TopCosines",
    "abs_cosine_matrix",
    "baseline_draw_shape",
    "best_match_frac_above",
    "compare_decoders",
    "excess_over_null",
    "expected_max_abs_cosine",
    "frac_above",
    "max_abs_cosine",
    "mean_max_cosine",
    "normalize_rows",
    "one_to_one_matching",
    "per_latent_arrays",
    "prob_abs_cosine_below",
    "random_decoder_baseline",
    "shared_latents",
    "tile_shape",
    "top_abs_cosines",
    "transfer_abs_cosine",
]


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TopCosines:
    """Each latent's ``m`` best partners on the other side, by |cos|, best first.

    ``idx_a[i]`` are rows of B closest to row ``i`` of A and ``val_a[i]`` their
    |cos|; ``idx_b``/``val_b`` the same from B's side. Slots that could not be
    filled (the other side has fewer than ``m`` rows) hold index -1, value -1.
    """

    val_a: np.ndarray  # float32 [n_a, m]
    idx_a: np.ndarray  # int64 [n_a, m]
    val_b: np.ndarray  # float32 [n_b, m]
    idx_b: np.ndarray  # int64 [n_b, m]

    @property
    def m(self) -> int:
        return int(self.val_a.shape[1])


@dataclass(frozen=True)
class MaxCosineResult:
    """Each latent's best match on the other side, and mean max |cos| both ways.

    ``mmcs_a_to_b`` is the mean over rows of A of the largest |cos| to any row
    of B; ``mmcs`` is the mean of the two directions.
    """

    mmcs_a_to_b: float
    mmcs_b_to_a: float
    mmcs: float
    best_b_for_a: np.ndarray  # int64 [n_a]
    best_cos_a: np.ndarray  # float32 [n_a]
    best_a_for_b: np.ndarray  # int64 [n_b]
    best_cos_b: np.ndarray  # float32 [n_b]


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
# Small helpers
# --------------------------------------------------------------------------


def _as_matrix(x: Any, name: str) -> np.ndarray:
    """A 2-D float numpy array view of ``x`` (no copy when already one).

    A row source (``x.is_row_source``, e.g. :class:`saesim.checkpoints.LazyTensor`:
    ``shape``, ``.T``, and ``x[slice]`` / ``x[int_array]`` giving float32 rows)
    is returned as it is: the scans, the matchings and shared latents read it
    chunk by chunk instead of holding it whole.
    """
    if getattr(x, "is_row_source", False):
        if len(x.shape) != 2:
            raise SaesimError(f"{name}: expected a 2-D array [n_latents, d], got shape {x.shape}")
        return x
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise SaesimError(f"{name}: expected a 2-D array [n_latents, d], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise SaesimError(
            f"dimension mismatch: A has d={a.shape[1]}, B has d={b.shape[1]}"
        )
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise SaesimError(f"empty dictionary: A has {a.shape[0]} rows, B has {b.shape[0]}")


def normalize_rows(x: Any) -> np.ndarray:
    """float32 copy of ``x`` with each row scaled to unit L2 norm; zero rows stay zero."""
    arr = np.array(x, dtype=np.float32, copy=True)
    if arr.ndim != 2:
        raise SaesimError(f"expected a 2-D array, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.divide(arr, norms, out=arr, where=norms > 0)
    return arr


def _torch():
    import torch  # deferred: saesim's light commands do not need it

    return torch


def _unit_chunk(x: np.ndarray, device, pad_to: int | None = None):
    """Rows of ``x`` as a float32 torch tensor on ``device``, unit-normalised.

    With ``pad_to``, zero rows are appended up to that many rows.
    """
    torch = _torch()
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32)
    norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    # zero rows: 0 / tiny = 0
    t = t / norms.clamp_min(torch.finfo(torch.float32).tiny)
    if pad_to is not None and pad_to > t.shape[0]:
        t = torch.cat([t, t.new_zeros(pad_to - t.shape[0], t.shape[1])])
    return t


# bytes of working memory per tile entry: the float32 tile, the gathered
# candidate blocks (at most the tile again), masks and index lists
_BYTES_PER_TILE_ENTRY = 12
# side of the blocks whose maxima screen a tile for candidates
_BLOCK = 32


def _tile_cost(s: int, d: int) -> float:
    """Working bytes of a scan with square tiles of side ``s``."""
    return _BYTES_PER_TILE_ENTRY * s * s + 12.0 * s * d


def tile_shape(n_a: int, n_b: int, d: int, memory_budget_mb: float) -> tuple[int, int]:
    """Tile sides (rows of A, rows of B) for a scan whose working memory fits the budget.

    A square tile of side s costs about 12 s^2 bytes (tile, candidate blocks,
    masks) plus 12 s d bytes (normalised chunks of A and B and a copy in
    flight). The returned per-latent lists are not counted. The side is a
    power of two, at most ``MAX_TILE``, at least 1, and no larger than needed.
    """
    avail = float(memory_budget_mb) * 2**20
    if not avail > 0:
        raise SaesimError(f"memory budget must be positive, got {memory_budget_mb} MB")

    s = 1
    while s < MAX_TILE and _tile_cost(2 * s, d) <= avail:
        s *= 2
    return min(s, n_a), min(s, n_b)


# --------------------------------------------------------------------------
# The scan: every latent's top-m partners in both directions, one pass
# --------------------------------------------------------------------------


def _fold_best(run_v, run_i, vals, idx):
    """Merge a tile's best-first candidates [L, k] into the running top-m lists [L, m]."""
    torch = _torch()
    m = run_v.shape[1]
    if m == 1:
        better = vals[:, 0] > run_v[:, 0]  # strict: on ties the earlier tile wins
        run_v[:, 0] = torch.where(better, vals[:, 0], run_v[:, 0])
        run_i[:, 0] = torch.where(better, idx[:, 0], run_i[:, 0])
        return
    v, j = torch.cat([run_v, vals], dim=1).topk(m, dim=1)
    run_i.copy_(torch.cat([run_i, idx], dim=1).gather(1, j))
    run_v.copy_(v)


def _top_in_blocks(blocks, bmax, m: int, floor=None):
    """Top-m entries of each line, given the line's blocks [L, nb, bs] and their maxima [L, nb].

    The line's m best entries all lie in its m blocks with the largest maxima
    (a block holding one of them has a maximum at least the m-th best, and at
    most m blocks can), so only those blocks are searched. With ``floor`` [L]
    (the running m-th best), only entries above it matter, so fewer blocks are
    searched when no line has m blocks above its floor. Returns values and
    positions within the line, best first, each [L, k] with k <= m, or None
    when no entry is above the floor.
    """
    torch = _torch()
    L, nb, bs = blocks.shape
    lines = torch.arange(L, device=blocks.device)[:, None]
    if m == 1:
        bv, bj = bmax.max(dim=1, keepdim=True)  # first block holding the max
        off = blocks[lines, bj].argmax(dim=2)  # [L, 1, bs] -> first position of the max
        return bv, bj * bs + off
    kb = min(m, nb)
    if floor is not None:
        kb = min(kb, int((bmax > floor[:, None]).sum(dim=1).max()))
        if kb == 0:
            return None
    bj = bmax.topk(kb, dim=1, sorted=False).indices  # [L, kb]
    vals = blocks[lines, bj].reshape(L, kb * bs)
    v, j = vals.topk(min(m, kb * bs), dim=1)
    return v, bj.gather(1, j // bs) * bs + j % bs


def _fold_above_floor(run_v, run_i, blocks, bmax, offset) -> bool:
    """Merge the entries above each line's floor (its running m-th best) into its top-m, sparsely.

    ``blocks`` [L, nb, bs] and their maxima ``bmax`` [L, nb] as in
    :func:`_top_in_blocks`. Only blocks whose maximum beats their line's floor
    are read: once a few tiles have been seen that is a few per line, where
    the dense path reads the m best blocks of every line. Returns False,
    changing nothing, when more than L m / 2 blocks qualify (the first tiles)
    or one line has more than 2 m entries above its floor; the dense path is
    cheaper then.
    """
    torch = _torch()
    L, nb, bs = blocks.shape
    m = run_v.shape[1]
    floor = run_v[:, m - 1]
    hit = bmax > floor[:, None]
    n_hit = int(hit.sum())
    if n_hit == 0:
        return True
    if 2 * n_hit > L * m:
        return False
    ln, bk = hit.nonzero(as_tuple=True)  # line-major: ln is sorted
    vals = blocks[ln, bk]  # [P, bs]
    keep = vals > floor[ln][:, None]
    e_line = ln[:, None].expand(-1, bs)[keep]  # still sorted
    e_val = vals[keep]
    e_idx = (bk[:, None] * bs + torch.arange(bs, device=vals.device))[keep] + offset
    rank = torch.arange(len(e_line), device=vals.device) - torch.searchsorted(e_line, e_line)
    k = int(rank.max()) + 1
    if k > 2 * m:
        return False
    new_v = run_v.new_full((L, k), -2.0)  # below the -1 placeholders
    new_i = run_i.new_full((L, k), -1)
    new_v[e_line, rank] = e_val
    new_i[e_line, rank] = e_idx
    _fold_best(run_v, run_i, new_v, new_i)
    return True


def _update_rows(run_v, run_i, tile, offset, bs):
    """Fold the entries of ``tile`` [R, C] into the running top-m of its rows (partners: columns)."""
    R, C = tile.shape
    m = run_v.shape[1]
    blocks = tile.view(R, C // bs, bs)
    bmax = blocks.amax(dim=2)
    if m > 1 and _fold_above_floor(run_v, run_i, blocks, bmax, offset):
        return
    top = _top_in_blocks(blocks, bmax, m, run_v[:, m - 1])
    if top is not None:
        _fold_best(run_v, run_i, top[0], top[1] + offset)


def _update_cols(run_v, run_i, tile, offset, bs):
    """Fold the entries of ``tile`` [R, C] into the running top-m of its first ``len(run_v)`` columns.

    Rows are screened in blocks of ``bs``; any further columns are padding.
    """
    R, C = tile.shape
    c, m = run_v.shape
    blocks = tile.view(R // bs, bs, C)
    bmax = blocks.amax(dim=1)[:, :c].T  # [c, nb], a small copy
    # [c, nb, bs] view of the blocks, column by column (strided, not copied)
    cblocks = blocks[:, :, :c].permute(2, 0, 1)
    if m > 1 and _fold_above_floor(run_v, run_i, cblocks, bmax, offset):
        return
    top = _top_in_blocks(cblocks, bmax, m, run_v[:, m - 1])
    if top is not None:
        _fold_best(run_v, run_i, top[0], top[1] + offset)


def _ceil_to(x: int, k: int) -> int:
    return -(-x // k) * k


def top_abs_cosines(
    a: Any,
    b: Any,
    m: int = DEFAULT_TOP_M,
    *,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    device: str = "cpu",
) -> TopCosines:
    """Each latent's ``m`` largest |cos| partners on the other side, in one pass over tiles.

    Rows of ``a`` and ``b`` need not be normalised: they are normalised chunk
    by chunk. Working memory (beyond the inputs and the returned lists) stays
    within ``memory_budget_mb``: the tiles, and the normalised chunks of B
    when all of them fit beside the tiles (otherwise B's chunks are normalised
    again for every chunk of A). Exact ties are broken arbitrarily.
    """
    torch = _torch()
    a = _as_matrix(a, "A")
    b = _as_matrix(b, "B")
    _check_pair(a, b)
    if m < 1:
        raise SaesimError(f"top_m must be >= 1, got {m}")
    n_a, n_b, d = a.shape[0], b.shape[0], a.shape[1]
    dev = torch.device(device)
    R, C = tile_shape(n_a, n_b, d, memory_budget_mb)
    bs = min(_BLOCK, R, C)
    R_pad, C_pad = _ceil_to(R, bs), _ceil_to(C, bs)
    run_va = torch.full((n_a, m), -1.0, dtype=torch.float32, device=dev)
    run_ia = torch.full((n_a, m), -1, dtype=torch.int64, device=dev)
    run_vb = torch.full((n_b, m), -1.0, dtype=torch.float32, device=dev)
    run_ib = torch.full((n_b, m), -1, dtype=torch.int64, device=dev)
    buf = torch.empty(R_pad * C_pad, dtype=torch.float32, device=dev)
    keep_b = _tile_cost(max(R, C), d) + 4.0 * (n_b + C) * d <= float(memory_budget_mb) * 2**20
    # On CPU the per-tile bookkeeping (many small reductions, gathers, top-k) runs on one
    # thread: split over threads it waits on their synchronisation, several times
    # slower on a busy machine (measured: 100 vs 390 ms a 4096 x 4096 tile at m = 16).
    n_threads = torch.get_num_threads()
    one_thread = dev.type == "cpu" and n_threads > 1
    b_chunks: dict[int, Any] = {}

    def b_chunk(j0: int, c: int, cp: int):
        if j0 in b_chunks:
            return b_chunks[j0]
        bc = _unit_chunk(b[j0 : j0 + c], dev, cp)
        if keep_b:
            b_chunks[j0] = bc
        return bc

    with torch.inference_mode():
        for i0 in range(0, n_a, R):
            r = min(R, n_a - i0)
            rp = _ceil_to(r, bs)
            ac = _unit_chunk(a[i0 : i0 + r], dev, rp)
            for j0 in range(0, n_b, C):
                c = min(C, n_b - j0)
                cp = _ceil_to(c, bs)
                bc = b_chunk(j0, c, cp)
                tile = buf[: rp * cp].view(rp, cp)
                torch.matmul(ac, bc.T, out=tile)
                tile.abs_()
                if rp > r:
                    tile[r:, :] = -2.0  # padding ranks below the -1 placeholders
                if cp > c:
                    tile[:, c:] = -2.0
                if one_thread:
                    torch.set_num_threads(1)
                try:
                    _update_rows(run_va[i0 : i0 + r], run_ia[i0 : i0 + r], tile[:r], j0, bs)
                    _update_cols(run_vb[j0 : j0 + c], run_ib[j0 : j0 + c], tile, i0, bs)
                finally:
                    if one_thread:
                        torch.set_num_threads(n_threads)
                del tile, bc
        b_chunks.clear()
    return TopCosines(
        val_a=run_va.cpu().numpy(),
        idx_a=run_ia.cpu().numpy(),
        val_b=run_vb.cpu().numpy(),
        idx_b=run_ib.cpu().numpy(),
    )


def _max_result(best_b_for_a, best_cos_a, best_a_for_b, best_cos_b) -> MaxCosineResult:
    """A :class:`MaxCosineResult` from each latent's best partner and |cos|, both ways."""
    best_cos_a = np.ascontiguousarray(best_cos_a, dtype=np.float32)
    best_cos_b = np.ascontiguousarray(best_cos_b, dtype=np.float32)
    a2b = float(best_cos_a.mean(dtype=np.float64))
    b2a = float(best_cos_b.mean(dtype=np.float64))
    return MaxCosineResult(
        mmcs_a_to_b=a2b,
        mmcs_b_to_a=b2a,
        mmcs=0.5 * (a2b + b2a),
        best_b_for_a=np.ascontiguousarray(best_b_for_a, dtype=np.int64),
        best_cos_a=best_cos_a,
        best_a_for_b=np.ascontiguousarray(best_a_for_b, dtype=np.int64),
        best_cos_b=best_cos_b,
    )


def _max_result_from_top(top: TopCosines) -> MaxCosineResult:
    return _max_result(top.idx_a[:, 0], top.val_a[:, 0], top.idx_b[:, 0], top.val_b[:, 0])


def max_abs_cosine(
    a: Any,
    b: Any,
    *,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    device: str = "cpu",
) -> MaxCosineResult:
    """Best match of every latent on the other side, both directions, in one pass.

    ``mmcs_a_to_b`` is the mean over rows of ``a`` of max |cos| to any row of
    ``b``; ``mmcs`` is the mean of both directions (the "PWMCC" of the
    literature, symmetrised). Exact ties are broken arbitrarily.
    """
    top = top_abs_cosines(a, b, 1, memory_budget_mb=memory_budget_mb, device=device)
    return _max_result_from_top(top)


def mean_max_cosine(a: Any, b: Any, **kwargs) -> float:
    """Symmetric mean max |cos| between the rows of ``a`` and ``b`` (see :func:`max_abs_cosine`)."""
    return max_abs_cosine(a, b, **kwargs).mmcs


def abs_cosine_matrix(
    a: Any,
    b: Any,
    *,
    dtype=np.float32,
    negate: bool = False,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    device: str = "cpu",
) -> np.ndarray:
    """The full [n_a, n_b] |cos| matrix (``-|cos|`` if ``negate``), filled tile by tile.

    The result itself is not counted in the budget; only the working tiles are.
    On CPU the tiles are numpy products (no torch import: a job comparing two
    small SAEs starts in well under a second); on CUDA they are torch's.
    """
    a = _as_matrix(a, "A")
    b = _as_matrix(b, "B")
    _check_pair(a, b)
    n_a, n_b, d = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((n_a, n_b), dtype=dtype)
    R, C = tile_shape(n_a, n_b, d, memory_budget_mb)
    if str(device) == "cpu":
        for i0 in range(0, n_a, R):
            ac = normalize_rows(a[i0 : i0 + R])
            for j0 in range(0, n_b, C):
                tile = np.abs(ac @ normalize_rows(b[j0 : j0 + C]).T)
                out[i0 : i0 + ac.shape[0], j0 : j0 + tile.shape[1]] = -tile if negate else tile
        return out
    torch = _torch()
    dev = torch.device(device)
    with torch.inference_mode():
        for i0 in range(0, n_a, R):
            ac = _unit_chunk(a[i0 : i0 + R], dev)
            for j0 in range(0, n_b, C):
                bc = _unit_chunk(b[j0 : j0 + C], dev)
                tile = (ac @ bc.T).abs_()
                if negate:
                    tile.neg_()
                out[i0 : i0 + ac.shape[0], j0 : j0 + bc.shape[0]] = tile.cpu().numpy()
    return out


def _max_result_from_dense(cos: np.ndarray) -> MaxCosineResult:
    """Best matches both ways read off a full |cos| matrix (see :func:`max_abs_cosine`)."""
    best_b_for_a = cos.argmax(axis=1)
    best_a_for_b = cos.argmax(axis=0)
    return _max_result(
        best_b_for_a, cos[np.arange(cos.shape[0]), best_b_for_a],
        best_a_for_b, cos[best_a_for_b, np.arange(cos.shape[1])],
    )


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


def _hungarian_on(cos: np.ndarray) -> MatchingResult:
    """Exact Hungarian matching on a full float64 |cos| matrix with n_a <= n_b.

    The matrix is negated in place for scipy (which minimises) and restored,
    so no second float64 copy is made.
    """
    from scipy.optimize import linear_sum_assignment

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
# Fractions and shared latents
# --------------------------------------------------------------------------


def _key(t: float) -> str:
    return f"{float(t):g}"


def frac_above(values: Any, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, *, denominator: int | None = None) -> dict[str, float]:
    """Fraction of ``values`` at or above each threshold, keyed like ``"0.7"``.

    ``denominator`` overrides ``len(values)`` (e.g. to count over all latents
    of the smaller SAE when ``values`` lists only matched ones).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    n = len(v) if denominator is None else int(denominator)
    if n == 0:
        return {_key(t): float("nan") for t in thresholds}
    return {_key(t): float(np.count_nonzero(v >= t) / n) for t in thresholds}


def best_match_frac_above(res: MaxCosineResult, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict[str, float]:
    """Cross-width measure: fraction of the smaller SAE's latents whose best match in the other is >= t.

    With equal widths it is the mean of the two directions.
    """
    n_a, n_b = len(res.best_cos_a), len(res.best_cos_b)
    if n_a < n_b:
        return frac_above(res.best_cos_a, thresholds)
    if n_b < n_a:
        return frac_above(res.best_cos_b, thresholds)
    fa = frac_above(res.best_cos_a, thresholds)
    fb = frac_above(res.best_cos_b, thresholds)
    return {k: 0.5 * (fa[k] + fb[k]) for k in fa}


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
    threshold: float = 0.7,
    *,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    top_m: int = DEFAULT_TOP_M,
    device: str = "cpu",
    dec_matching: MatchingResult | None = None,
    enc_matching: MatchingResult | None = None,
) -> SharedLatentsResult:
    """Latents shared by two SAEs, as defined by Paulo & Belrose (2025).

    Decoder rows (``W_dec`` [n, d]) and encoder directions (columns of
    ``W_enc`` [d, n]) are matched one-to-one separately; a latent of A is
    shared when both matchings give it the same partner in B and both |cos|
    are >= ``threshold``. ``frac`` counts over the smaller SAE's latents.
    """
    dec_a = _as_matrix(dec_a, "A decoder")
    dec_b = _as_matrix(dec_b, "B decoder")
    _check_pair(dec_a, dec_b)
    n_a, n_b, d = dec_a.shape[0], dec_b.shape[0], dec_a.shape[1]
    ea = _encoder_rows(enc_a, n_a, d, "A encoder")
    eb = _encoder_rows(enc_b, n_b, d, "B encoder")
    kw = dict(memory_budget_mb=memory_budget_mb, top_m=top_m, device=device)
    if dec_matching is None:
        dec_matching = one_to_one_matching(dec_a, dec_b, **kw)
    if enc_matching is None:
        enc_matching = one_to_one_matching(ea, eb, **kw)
    pd, cd = dec_matching.partner_of_a(), dec_matching.cos_of_a()
    pe, ce = enc_matching.partner_of_a(), enc_matching.cos_of_a()
    with np.errstate(invalid="ignore"):
        mask = (pd >= 0) & (pd == pe) & (cd >= threshold) & (ce >= threshold)
    return SharedLatentsResult(frac=float(mask.sum() / min(n_a, n_b)), mask=mask, threshold=float(threshold))


# --------------------------------------------------------------------------
# Random baseline
# --------------------------------------------------------------------------


def prob_abs_cosine_below(x: Any, d: int) -> np.ndarray:
    """P(|cos| <= x) for two independent uniformly random directions in R^d.

    cos^2 follows Beta(1/2, (d-1)/2), so this is the regularised incomplete beta
    function at x^2.
    """
    from scipy.special import betainc

    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return betainc(0.5, 0.5 * (d - 1), x * x)


def expected_max_abs_cosine(n: int, d: int, grid: int = 20001) -> float:
    """E[max |cos|] between one direction and ``n`` independent random directions in R^d.

    Given the first direction the ``n`` cosines are i.i.d. (rotation
    invariance), so E[max] = integral over [0, 1] of (1 - F(x)^n), with F from
    :func:`prob_abs_cosine_below`. This is exactly the expected mean max |cos|
    from A to B for random Gaussian decoders with ``n`` rows in B.
    """
    x = np.linspace(0.0, 1.0, grid)
    with np.errstate(divide="ignore"):
        log_f = np.log(prob_abs_cosine_below(x, d))
    surv = -np.expm1(n * log_f)  # 1 - F^n without cancellation
    return float(np.trapezoid(surv, x))


def _p_best_above(t: float, n: int, d: int) -> float:
    """P(max of n random |cos| >= t) = 1 - F(t)^n."""
    f = float(prob_abs_cosine_below(t, d))
    if f <= 0.0:
        return 1.0
    return max(0.0, float(-np.expm1(n * np.log(f))))


def _gaussian(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return rng.standard_normal((n, d), dtype=np.float32)


def transfer_abs_cosine(x: Any, d: int, ratio: float) -> np.ndarray:
    """|cos| values seen against n' random rows, moved to the same level against n = n' / ``ratio`` rows.

    With F the CDF of the |cos| between two random directions in R^d
    (:func:`prob_abs_cosine_below`), ``x`` goes to the ``y`` with
    F(y)^n = F(x)^n', i.e. log F(y) = ``ratio`` * log F(x). The best of n'
    i.i.d. values and the best of n have the same law after this map, exactly;
    for a row's partner in an optimal one-to-one matching it holds in the limit
    of many rows (see :func:`random_decoder_baseline`). float64, same shape as ``x``.
    """
    from scipy.special import betaincc, betainccinv

    if not ratio > 0:
        raise SaesimError(f"transfer ratio must be positive, got {ratio}")
    a, b = 0.5, 0.5 * (d - 1)
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    tail = betaincc(a, b, x * x)  # P(|cos| > x), accurate far out in the tail
    with np.errstate(divide="ignore"):
        log_f = np.log1p(-tail)  # -inf at x = 0
    tail_y = -np.expm1(ratio * log_f)
    return np.sqrt(betainccinv(a, b, tail_y))


def baseline_draw_shape(n_a: int, n_b: int, draw_size: int | None = DEFAULT_BASELINE_DRAW_SIZE) -> tuple[int, int]:
    """Shape of the random draws for the matching baseline of an n_a x n_b comparison.

    Unchanged when n_a n_b <= ``draw_size``^2 (or ``draw_size`` is None);
    otherwise both sides are divided by the same factor s = sqrt(n_a n_b) /
    ``draw_size`` (rounded, at least 1 row), keeping their ratio.
    """
    if draw_size is None or n_a * n_b <= draw_size * draw_size:
        return int(n_a), int(n_b)
    if draw_size < 1:
        raise SaesimError(f"baseline draw size must be >= 1 or None, got {draw_size}")
    s = float(np.sqrt(float(n_a) * float(n_b))) / draw_size
    return max(1, int(round(n_a / s))), max(1, int(round(n_b / s)))


def random_decoder_baseline(
    n_a: int,
    n_b: int,
    d: int,
    *,
    draws: int = 3,
    seed: int = 0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    shared_threshold: float = 0.7,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    top_m: int = DEFAULT_TOP_M,
    device: str = "cpu",
    with_encoders: bool = True,
    draw_size: int | None = DEFAULT_BASELINE_DRAW_SIZE,
) -> dict[str, Any]:
    """Every metric of :func:`compare_decoders` for random Gaussian SAEs of the same shapes.

    * Max-type metrics (``mmcs*``, ``frac_best_match_above``) use their closed
      form: given a row of A its |cos| to B's rows are i.i.d., so the expected
      per-row max follows from the Beta law of cos^2 (:func:`expected_max_abs_cosine`).
    * Matching metrics (``hungarian_mean_cos``, ``frac_matched_above``) are
      averaged over ``draws`` pairs of random decoders (one scan each, matched
      exactly as :func:`one_to_one_matching` would); ``std`` holds their spread.
      The same scans give ``empirical`` values of the max-type metrics, as a check.
    * Beyond ``draw_size``^2 latent pairs (n_a n_b) the draws are smaller:
      :func:`baseline_draw_shape` divides both sides by one factor s, and every
      matched |cos| x of a draw is moved to the level it would have against s
      times as many rows (:func:`transfer_abs_cosine`: F(y)^n_b = F(x)^n_b').
      Why this is right: a row's |cos| to the other side's random rows are
      i.i.d.; in "tail units" n_b (1 - F(x)) its best values form the same
      Poisson process whatever n_b and d (exactly for the best value), and the
      optimal matching only ever uses each row's few best values, so the law
      of the matched values in those units does not depend on n_b either (the
      local limit of the random assignment problem, Aldous 2001). Measured:
      within 1e-3 of full-size draws at n = 4,096 (d = 576, from 1,024 and from
      256 latents) and in ``benchmarks/bench_compare.py`` at 4k/8k/16k.
      ``draw_n_a``/``draw_n_b`` give the drawn shape; ``draw_size=None`` draws
      at full size. The empirical max-type values are transferred the same way.
    * ``shared_latents_frac`` needs a decoder and an encoder pair with |cos| >=
      the threshold: when the expected number of such pairs, n_a n_b p^2, is
      below 1e-3 the baseline is 0 (``method`` says "bound"); otherwise it is
      measured on random encoders too, at full size (it does not transfer).

    Deterministic given ``seed``.
    """
    if min(n_a, n_b, d) < 1 or draws < 1:
        raise SaesimError(f"random baseline needs positive sizes and draws, got n_a={n_a} n_b={n_b} d={d} draws={draws}")
    a2b = expected_max_abs_cosine(n_b, d)
    b2a = expected_max_abs_cosine(n_a, d)
    small, large = (n_a, n_b) if n_a <= n_b else (n_b, n_a)
    if n_a == n_b:
        fbest = {_key(t): _p_best_above(t, n_b, d) for t in thresholds}
    else:
        fbest = {_key(t): _p_best_above(t, large, d) for t in thresholds}

    p_pair = 1.0 - float(prob_abs_cosine_below(shared_threshold, d))
    shared_by_bound = (not with_encoders) or (n_a * n_b * p_pair**2 < 1e-3)

    # drawn shape: smaller (and transferred) only where the shared fraction is not measured
    da, db = baseline_draw_shape(n_a, n_b, draw_size) if shared_by_bound else (n_a, n_b)
    scaled = (da, db) != (n_a, n_b)
    # the smaller side's rows are matched into the larger side: its size sets the scale
    r_match = db / n_b if n_a <= n_b else da / n_a

    rng = np.random.default_rng(seed)
    hung, fmatched, emp_a2b, emp_b2a, shared = [], [], [], [], []
    for _ in range(draws):
        A = _gaussian(rng, da, d)
        B = _gaussian(rng, db, d)
        if _dense_fits(da, db, memory_budget_mb):
            mx, mr = _dense_max_and_matching(A, B, memory_budget_mb, device)
        else:
            top = top_abs_cosines(A, B, top_m, memory_budget_mb=memory_budget_mb, device=device)
            mr = _sparse_matching(A, B, top)
            mx = _max_result_from_top(top)
            del top
        if scaled:
            cos = transfer_abs_cosine(mr.cos, d, r_match)
            hung.append(float(cos.mean()))
            fmatched.append(frac_above(cos, thresholds))
            emp_a2b.append(float(transfer_abs_cosine(mx.best_cos_a, d, db / n_b).mean()))
            emp_b2a.append(float(transfer_abs_cosine(mx.best_cos_b, d, da / n_a).mean()))
        else:
            hung.append(mr.mean_matched_cos)
            fmatched.append(frac_above(mr.cos, thresholds, denominator=small))
            emp_a2b.append(mx.mmcs_a_to_b)
            emp_b2a.append(mx.mmcs_b_to_a)
        if not shared_by_bound:
            EA = _gaussian(rng, d, n_a)
            EB = _gaussian(rng, d, n_b)
            sh = shared_latents(A, B, EA, EB, shared_threshold, memory_budget_mb=memory_budget_mb,
                                top_m=top_m, device=device, dec_matching=mr)
            shared.append(sh.frac)
            del EA, EB
        del A, B

    def mean(xs):
        return float(np.mean(xs))

    def std(xs):
        return float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0

    keys = [_key(t) for t in thresholds]
    emp_mmcs = [0.5 * (x + y) for x, y in zip(emp_a2b, emp_b2a)]
    matching_method = "transferred" if scaled else "empirical"
    out: dict[str, Any] = {
        "n_a": int(n_a),
        "n_b": int(n_b),
        "d": int(d),
        "draws": int(draws),
        "draw_n_a": int(da),
        "draw_n_b": int(db),
        "seed": int(seed),
        "mmcs": 0.5 * (a2b + b2a),
        "mmcs_a_to_b": a2b,
        "mmcs_b_to_a": b2a,
        "hungarian_mean_cos": mean(hung),
        "frac_matched_above": {k: mean([f[k] for f in fmatched]) for k in keys},
        "frac_best_match_above": fbest,
        "shared_latents_frac": 0.0 if shared_by_bound else mean(shared),
        "std": {
            "hungarian_mean_cos": std(hung),
            "frac_matched_above": {k: std([f[k] for f in fmatched]) for k in keys},
            "shared_latents_frac": 0.0 if shared_by_bound else std(shared),
            "mmcs": std(emp_mmcs),
            "mmcs_a_to_b": std(emp_a2b),
            "mmcs_b_to_a": std(emp_b2a),
        },
        "empirical": {"mmcs": mean(emp_mmcs), "mmcs_a_to_b": mean(emp_a2b), "mmcs_b_to_a": mean(emp_b2a)},
        "method": {
            "mmcs": "closed_form",
            "mmcs_a_to_b": "closed_form",
            "mmcs_b_to_a": "closed_form",
            "frac_best_match_above": "closed_form",
            "hungarian_mean_cos": matching_method,
            "frac_matched_above": matching_method,
            "shared_latents_frac": "bound" if shared_by_bound else "empirical",
        },
    }
    return out


# --------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------

SCALAR_METRICS = ("mmcs", "mmcs_a_to_b", "mmcs_b_to_a", "hungarian_mean_cos", "shared_latents_frac")


def _ratio(value, base):
    if value is None or base is None or not np.isfinite(base) or base == 0:
        return None
    return float(value / base)


def compare_decoders(
    dec_a: Any,
    dec_b: Any,
    enc_a: Any = None,
    enc_b: Any = None,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    shared_threshold: float = 0.7,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    top_m: int = DEFAULT_TOP_M,
    device: str = "cpu",
    with_baseline: bool = True,
    baseline_draws: int = 3,
    seed: int = 0,
    return_arrays: bool = False,
    baseline_draw_size: int | None = DEFAULT_BASELINE_DRAW_SIZE,
):
    """All similarity metrics between two SAEs, as a JSON-able dict.

    ``dec_*`` are decoders ``W_dec`` [n, d]; ``enc_*`` (optional) encoders
    ``W_enc`` [d, n], needed only for ``shared_latents_frac``. Fractions are
    over the smaller SAE's latents. With ``with_baseline`` the same metrics on
    random SAEs of the same shapes go under ``baseline`` and value / baseline
    under ``ratio`` (see :func:`random_decoder_baseline`; ``baseline_draw_size``
    is its ``draw_size``). With ``return_arrays`` returns ``(dict, arrays)`` where
    ``arrays`` is :func:`per_latent_arrays` of the comparison.
    """
    A = _as_matrix(dec_a, "A decoder")
    B = _as_matrix(dec_b, "B decoder")
    _check_pair(A, B)
    n_a, n_b, d = A.shape[0], B.shape[0], A.shape[1]
    if (enc_a is None) != (enc_b is None):
        raise SaesimError("shared latents need both encoders (got only one)")
    kw = dict(memory_budget_mb=memory_budget_mb, device=device)

    if _dense_fits(n_a, n_b, memory_budget_mb):
        mx, match = _dense_max_and_matching(A, B, memory_budget_mb, device)
    else:
        top = top_abs_cosines(A, B, top_m, **kw)
        mx = _max_result_from_top(top)
        match = _sparse_matching(A, B, top)
        del top

    shared = None
    if enc_a is not None:
        shared = shared_latents(A, B, enc_a, enc_b, shared_threshold, top_m=top_m, dec_matching=match, **kw)

    small = min(n_a, n_b)
    keys = [_key(t) for t in thresholds]
    res: dict[str, Any] = {
        "n_a": int(n_a),
        "n_b": int(n_b),
        "d": int(d),
        "mmcs": mx.mmcs,
        "mmcs_a_to_b": mx.mmcs_a_to_b,
        "mmcs_b_to_a": mx.mmcs_b_to_a,
        "hungarian_mean_cos": match.mean_matched_cos,
        "frac_matched_above": frac_above(match.cos, thresholds, denominator=small),
        "frac_best_match_above": best_match_frac_above(mx, thresholds),
        "shared_latents_frac": None if shared is None else shared.frac,
        "shared_threshold": float(shared_threshold),
        "matching_exact": bool(match.exact),
        "top_m": None if match.exact else int(top_m),
        "thresholds": keys,
    }
    if with_baseline:
        base = random_decoder_baseline(
            n_a, n_b, d, draws=baseline_draws, seed=seed, thresholds=thresholds,
            shared_threshold=shared_threshold, memory_budget_mb=memory_budget_mb,
            top_m=top_m, device=device, with_encoders=enc_a is not None, draw_size=baseline_draw_size,
        )
        if enc_a is None:
            base["shared_latents_frac"] = None
        res["baseline"] = base
        res["ratio"] = {k: _ratio(res[k], base[k]) for k in SCALAR_METRICS}
    if return_arrays:
        return res, per_latent_arrays(mx, match, shared)
    return res


#: Metrics of :func:`compare_decoders` that :func:`excess_over_null` reports: scalars and threshold dicts.
NULL_METRICS = SCALAR_METRICS + ("frac_matched_above", "frac_best_match_above")


def _excess(value, null):
    if value is None or null is None:
        return None
    value, null = float(value), float(null)
    if not (np.isfinite(value) and np.isfinite(null)) or null >= 1.0:
        return None  # no room above a null of 1
    return (value - null) / (1.0 - null)


def excess_over_null(res: dict[str, Any], null_res: dict[str, Any]) -> dict[str, Any]:
    """Each metric of a comparison against the same metric on a null pair.

    ``res`` and ``null_res`` are :func:`compare_decoders` outputs: the real
    pair, and a pair of SAEs trained the same way on data with no sparse
    features (e.g. Gaussian data of the same covariance). For every metric m
    of :data:`NULL_METRICS` returns ``m_null`` (the null pair's value) and
    ``m_excess`` = (m - m_null) / (1 - m_null): 0 at the null, 1 for a perfect
    pair. Threshold fractions give dicts keyed like the metric's. None where
    either value is missing or the null is 1.
    """
    out: dict[str, Any] = {}
    for m in NULL_METRICS:
        v, n = res.get(m), null_res.get(m)
        if isinstance(v, dict) or isinstance(n, dict):
            v, n = v or {}, n or {}
            out[f"{m}_null"] = {k: n.get(k) for k in v}
            out[f"{m}_excess"] = {k: _excess(v[k], n.get(k)) for k in v}
        else:
            out[f"{m}_null"] = None if n is None else float(n)
            out[f"{m}_excess"] = _excess(v, n)
    return out


def per_latent_arrays(
    mx: MaxCosineResult,
    match: MatchingResult | None = None,
    shared: SharedLatentsResult | None = None,
) -> dict[str, np.ndarray]:
    """Per-latent results as named arrays (what ``saesim compare --out`` writes)."""
    out = {
        "best_b_for_a": mx.best_b_for_a,
        "best_cos_a": mx.best_cos_a,
        "best_a_for_b": mx.best_a_for_b,
        "best_cos_b": mx.best_cos_b,
    }
    if match is not None:
        out["matching_rows"] = match.rows
        out["matching_cols"] = match.cols
        out["matching_cos"] = match.cos
    if shared is not None:
        out["shared_mask_a"] = shared.mask
    return out
