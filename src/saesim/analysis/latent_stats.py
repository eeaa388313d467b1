"""Per-latent activation statistics of an SAE in one bounded-memory pass over store rows.

For every latent of an SAE at once, one pass over the rows (chunk by chunk)
gathers:

* its top-k activating rows (a running top-k: each chunk's top-k per latent,
  merged with the running one; ties broken by the earlier row);
* a uniform sample of its firing rows (bottom-m sampling: every firing entry
  gets a pseudo-random key, the m smallest keys per latent are kept), from which
  :meth:`LatentStats.middle` picks the rows nearest the sample's median: contexts
  from the middle of the activation distribution, not its tail;
* its firing count (activation > 0), activation sum, and a histogram of its
  nonzero activations on fixed log-spaced bins (:data:`HIST_EDGES`, values
  outside them counted in the end bins).

Memory bound: the running state is ``n_latents * (k + m) * 12`` bytes (float32
values + int64 rows) plus ``n_latents * n_bins * 8`` for the histogram (65,536
latents, k = 16, m = 32, 48 bins: 63 MB). Each chunk adds, beside the encoder's
own output (``chunk_rows * n_latents * 4`` bytes), a boolean mask of
``chunk_rows * n_latents`` bytes, about 100 bytes per firing entry (indices,
values, sort orders) and the chunk's candidates, ``n_latents * (k + m) * 16``
bytes: at 1,024 rows x 65,536 latents with 64 firing per row, 64 MB + 7 MB + 50 MB.
Nothing grows with the number of rows.

Results are deterministic: the same activations in the same chunks with the same
``seed`` give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from saesim.errors import SaesimError

__all__ = ["HIST_EDGES", "LatentStats", "LatentStatsAccumulator", "latent_stats", "stream_latent_stats"]

#: Histogram bin edges of nonzero activations: 48 log-spaced bins from 1e-3 to 1e3.
HIST_EDGES = np.logspace(-3, 3, 49).astype(np.float32)
"""Histogram bin edges of nonzero activations: 48 log-spaced bins from 1e-3 to 1e3."""


@dataclass
class LatentStats:
    """What :class:`LatentStatsAccumulator` gathered. Rows are global row ids (store row numbers).

    ``top_values``/``top_rows`` [n, k]: descending; where a latent fired on fewer
    than k rows the rest is 0 / -1. ``sample_values``/``sample_rows`` [n, m]: a
    uniform sample of firing rows (0 / -1 padded). ``fire_count``, ``act_sum`` [n];
    ``hist`` [n, len(HIST_EDGES) - 1].
    """

    top_values: np.ndarray
    top_rows: np.ndarray
    sample_values: np.ndarray
    sample_rows: np.ndarray
    fire_count: np.ndarray
    act_sum: np.ndarray
    hist: np.ndarray
    n_rows: int
    hist_edges: np.ndarray = field(default_factory=HIST_EDGES.copy)

    @property
    def n_latents(self) -> int:
        return int(self.top_values.shape[0])

    @property
    def frequency(self) -> np.ndarray:
        """Fraction of rows on which each latent fires."""
        return self.fire_count / max(self.n_rows, 1)

    @property
    def mean_when_firing(self) -> np.ndarray:
        return np.where(self.fire_count > 0, self.act_sum / np.maximum(self.fire_count, 1), 0.0)

    def middle(self, latent: int, m: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of up to ``m`` sampled firing rows nearest the sample's median activation."""
        ok = self.sample_rows[latent] >= 0
        rows, vals = self.sample_rows[latent][ok], self.sample_values[latent][ok]
        if rows.size == 0:
            return rows, vals
        order = np.lexsort((rows, vals))  # by value, then row: deterministic
        mid = rows.size // 2
        lo = max(0, min(mid - m // 2, rows.size - m))
        pick = order[lo:lo + m]
        return rows[pick], vals[pick]

    def top(self, latent: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, values) of the latent's top activating rows (only rows where it fired)."""
        ok = self.top_rows[latent] >= 0
        return self.top_rows[latent][ok], self.top_values[latent][ok]


class LatentStatsAccumulator:
    """Running per-latent statistics over chunks of activations (see the module docstring).

    Chunks must come in increasing row order (``row0`` at or after the end of the
    previous chunk): then among equal activations the earlier row ranks first.
    State is latent-major ([n_latents, k]) so that merges sort contiguous rows.
    """

    def __init__(self, n_latents: int, *, k: int = 16, m: int = 32, seed: int = 0, device: str = "cpu"):
        import torch

        if n_latents < 1 or k < 1 or m < 1:
            raise SaesimError(f"latent stats need n_latents, k and m >= 1 (got {n_latents}, {k}, {m})")
        if n_latents >= 2 ** 31:
            raise SaesimError(f"latent stats: {n_latents} latents is more than 2**31")
        self.n, self.k, self.m, self.seed = int(n_latents), int(k), int(m), int(seed)
        self.device = device
        f32, i64 = dict(dtype=torch.float32, device=device), dict(dtype=torch.int64, device=device)
        self.top_v = torch.zeros((n_latents, k), **f32)
        self.top_r = torch.full((n_latents, k), -1, **i64)
        self.key = torch.full((n_latents, m), 2.0, **f32)  # keys are in [0, 1); 2 = empty
        self.smp_v = torch.zeros((n_latents, m), **f32)
        self.smp_r = torch.full((n_latents, m), -1, **i64)
        self.count = torch.zeros(n_latents, **i64)
        self.sum = torch.zeros(n_latents, dtype=torch.float64, device=device)
        self.edges_log = torch.log(torch.as_tensor(HIST_EDGES, device=device))
        self.nb = len(HIST_EDGES) - 1
        self.hist = torch.zeros(n_latents * self.nb, **i64)
        self.n_rows = 0
        self.next_row = 0

    def update(self, acts: Any, row0: int | None = None) -> None:
        """Add one chunk: ``acts`` [rows, n_latents] (torch or numpy), rows ``row0 ..`` (default: after the last)."""
        import torch

        a = torch.as_tensor(acts, device=self.device)
        if a.ndim != 2 or a.shape[1] != self.n:
            raise SaesimError(f"activations of shape {list(a.shape)}; expected [rows, {self.n}]")
        R = a.shape[0]
        row0 = self.next_row if row0 is None else int(row0)
        if row0 < self.next_row:
            raise SaesimError(f"latent stats: chunk at row {row0} comes before the end of the last one ({self.next_row})")
        if R == 0:
            return
        # everything below works on the firing entries only (one dense scan): row-major order, so rows ascend
        r_idx, l_idx = (a > 0).nonzero(as_tuple=True)
        if r_idx.numel():
            vals = a[r_idx, l_idx].float()
            rows = r_idx + row0
            self.count += torch.bincount(l_idx, minlength=self.n)
            self.sum.index_add_(0, l_idx, vals.double())
            b = torch.bucketize(torch.log(vals), self.edges_log[1:-1])  # 0 .. nb-1, ends clipped
            self.hist.index_add_(0, l_idx * self.nb + b, torch.ones_like(b))
            # positive float32 bit patterns sort like their values: one int64 key = (latent, -value)
            desc = (2 ** 31 - 1) - vals.view(torch.int32).long()
            cv, cr, _ = self._first_per_latent(l_idx, desc, self.k, vals, rows, fill=0.0)
            # merge with the state: state first, stable sort by value, so equal values keep the earlier row
            all_v, all_r = torch.cat([self.top_v, cv], 1), torch.cat([self.top_r, cr], 1)
            j = torch.argsort(all_v, dim=1, descending=True, stable=True)[:, : self.k]
            self.top_v, self.top_r = all_v.gather(1, j), all_r.gather(1, j)
            # uniform sample: the m smallest pseudo-random keys per latent, merged with the state
            g = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + row0)
            keys = torch.rand(vals.numel(), generator=g, device=self.device)
            ck, cr2, cv2 = self._first_per_latent(l_idx, keys.view(torch.int32).long(), self.m, keys, rows, vals,
                                                  fill=2.0)
            all_k = torch.cat([self.key, ck], 1)
            k2, j = torch.topk(all_k, self.m, dim=1, largest=False, sorted=True)
            self.key = k2
            self.smp_r = torch.cat([self.smp_r, cr2], 1).gather(1, j)
            self.smp_v = torch.cat([self.smp_v, cv2], 1).gather(1, j)
        self.n_rows += R
        self.next_row = row0 + R

    def _first_per_latent(self, latent, order, k, first, rows, second=None, fill=0.0):
        """Per latent, the k entries smallest in ``order`` (int, < 2**31; ties: the earlier entry), as dense
        [n, k] matrices of ``first`` (``fill`` where fewer), ``rows`` (-1) and ``second`` (0)."""
        import torch

        o = torch.argsort(latent * (2 ** 31) + order, stable=True)
        ls = latent[o]
        rank = torch.arange(ls.numel(), device=self.device) - torch.searchsorted(ls, ls)
        keep = rank < k
        o, ls, rank = o[keep], ls[keep], rank[keep]
        out_first = torch.full((self.n, k), fill, dtype=torch.float32, device=self.device)
        out_rows = torch.full((self.n, k), -1, dtype=torch.int64, device=self.device)
        out_second = torch.zeros((self.n, k), dtype=torch.float32, device=self.device)
        out_first[ls, rank] = first[o]
        out_rows[ls, rank] = rows[o]
        if second is not None:
            out_second[ls, rank] = second[o]
        return out_first, out_rows, out_second

    def result(self) -> LatentStats:
        top_r = self.top_r.cpu().numpy().copy()
        top_v = self.top_v.cpu().numpy().copy()
        dead = top_v <= 0
        top_r[dead], top_v[dead] = -1, 0.0
        return LatentStats(
            top_values=top_v, top_rows=top_r,
            sample_values=self.smp_v.cpu().numpy().copy(), sample_rows=self.smp_r.cpu().numpy().copy(),
            fire_count=self.count.cpu().numpy(), act_sum=self.sum.cpu().numpy(),
            hist=self.hist.view(self.n, self.nb).cpu().numpy(), n_rows=self.n_rows,
        )


def stream_latent_stats(
    encode: Callable[[np.ndarray], Any],
    chunks: Iterable[tuple[int, np.ndarray]],
    n_latents: int,
    *,
    k: int = 16,
    m: int = 32,
    seed: int = 0,
    device: str = "cpu",
) -> LatentStats:
    """Encode each ``(row0, block)`` of ``chunks`` with ``encode`` (block [rows, d] -> [rows, n_latents]) and
    gather :class:`LatentStats` in one pass (e.g. ``chunks = store.iter_chunks(1024)``)."""
    acc = LatentStatsAccumulator(n_latents, k=k, m=m, seed=seed, device=device)
    for row0, block in chunks:
        acc.update(encode(block), row0)
    return acc.result()


def latent_stats(acts: np.ndarray, *, k: int = 16, m: int = 32, seed: int = 0, chunk_rows: int = 1024) -> LatentStats:
    """:class:`LatentStats` of an in-memory activation matrix [rows, n_latents], in chunks of ``chunk_rows``."""
    acts = np.asarray(acts, dtype=np.float32)
    return stream_latent_stats(lambda x: x, ((s, acts[s:s + chunk_rows]) for s in range(0, len(acts), chunk_rows)),
                               acts.shape[1], k=k, m=m, seed=seed)
