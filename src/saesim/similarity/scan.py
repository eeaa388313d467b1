"""Stage 1, the scan: |cos| between two SAE dictionaries, in memory bounded by a budget.

An SAE dictionary here is a 2-D array with one latent per row (a decoder
``W_dec`` of shape ``[n_latents, d]``, or the transposed encoder ``W_enc.T``).
Every function takes numpy arrays and returns numpy arrays or plain Python
values; torch is used inside for the matrix products, on CPU or CUDA.

The |cosine| matrix between two dictionaries of 65,536 latents holds 4.3e9
numbers (17 GB in float32), so nothing here builds it unless it fits the memory
budget. Instead :func:`top_abs_cosines` walks over tiles of it once and keeps,
for each latent on either side, its ``m`` best partners on the other side.
Mean max |cos|, best-match fractions and the candidate lists of the sparse
one-to-one matching (:mod:`saesim.similarity.matching`) all come from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from saesim.errors import SaesimError

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9)
"""|cos| thresholds of the matched and best-match fractions."""
DEFAULT_MEMORY_BUDGET_MB = 1024
"""Peak extra memory (MiB) of a scan or matching, beside the decoders themselves."""
DEFAULT_TOP_M = 16
"""Candidates kept per latent by the scan (sparse matching, splitting counts)."""
# Largest tile side. Bigger tiles do not make the matrix product faster on
# CPU, and the per-tile reductions touch less memory with tiles this size.
MAX_TILE = 4096
"""Largest tile side of the blocked |cos| scan."""


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



# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _as_matrix(x: Any, name: str) -> np.ndarray:
    """A 2-D float numpy array view of ``x`` (no copy when already one).

    A row source (``x.is_row_source``, e.g. :class:`saesim.saes.loading.LazyTensor`:
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
# Fractions
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
