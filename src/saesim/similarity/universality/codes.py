"""Sparse SAE codes: the latent activations of one SAE on a stream of tokens.

An SAE fires few of its latents per token, so its codes are kept as a scipy CSR
matrix.  Chunks arrive one at a time (from an activation store through an
encoder, or precomputed); :func:`collect_codes` accumulates the per-latent
moments on the fly and concatenates the chunks.

Memory of a :class:`SparseCodes`: 12 bytes per nonzero (float64 value + int32
index) plus 8 bytes per token (or latent) for the row pointer.  At 1M tokens
and 32 active latents per token that is about 390 MB per SAE.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from saesim.stores.activation_store import ActivationStore, open_store
from saesim.errors import SaesimError


@dataclass(frozen=True)
class LatentStats:
    """Moments of each latent's activation over ``n_tokens`` tokens (zeros included)."""

    n_tokens: int
    sums: np.ndarray  # [n_latents] float64: sum over tokens of the activation
    sums_sq: np.ndarray  # [n_latents] float64: sum over tokens of the squared activation
    fire_counts: np.ndarray  # [n_latents] int64: number of tokens with a nonzero activation

    @property
    def mean(self) -> np.ndarray:
        return self.sums / max(self.n_tokens, 1)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (divides by ``n_tokens``)."""
        var = self.sums_sq / max(self.n_tokens, 1) - self.mean**2
        return np.sqrt(np.maximum(var, 0.0))

    @property
    def firing_frequency(self) -> np.ndarray:
        """Fraction of tokens on which each latent is nonzero."""
        return self.fire_counts / max(self.n_tokens, 1)


@dataclass
class SparseCodes:
    """Latent activations of one SAE on aligned tokens, held sparse.

    ``matrix`` is float64 CSR, either token-major ``[n_tokens, n_latents]`` or
    latent-major ``[n_latents, n_tokens]`` (``latent_major=True``).
    """

    matrix: sp.csr_matrix
    latent_major: bool
    stats: LatentStats

    @property
    def n_tokens(self) -> int:
        return self.stats.n_tokens

    @property
    def n_latents(self) -> int:
        return int(self.stats.sums.shape[0])

    @property
    def nbytes(self) -> int:
        m = self.matrix
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)

    def as_latent_major(self) -> "SparseCodes":
        if self.latent_major:
            return self
        return SparseCodes(_transpose_csr(self.matrix), True, self.stats)

    def as_token_major(self) -> "SparseCodes":
        if not self.latent_major:
            return self
        return SparseCodes(_transpose_csr(self.matrix), False, self.stats)

    def token_major_matrix(self) -> sp.csr_matrix:
        return self.as_token_major().matrix


def _transpose_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    """CSR of the transpose (one copy of the nonzeros)."""
    csc = m.tocsc()
    return sp.csr_matrix((csc.data, csc.indices, csc.indptr), shape=(m.shape[1], m.shape[0]), copy=False)


def chunk_moments(chunk: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-latent (sum, sum of squares, nonzero count) of one token-major chunk."""
    n_latents = chunk.shape[1]
    values = chunk.data.astype(np.float64, copy=False)
    sums = np.bincount(chunk.indices, weights=values, minlength=n_latents)
    sums_sq = np.bincount(chunk.indices, weights=values * values, minlength=n_latents)
    counts = np.bincount(chunk.indices[values != 0], minlength=n_latents).astype(np.int64)
    return sums, sums_sq, counts


def _as_csr_chunk(chunk: Any, n_latents: int | None, where: str) -> sp.csr_matrix:
    if sp.issparse(chunk):
        m = sp.csr_matrix(chunk)
    else:
        arr = np.asarray(chunk)
        if arr.ndim != 2:
            raise SaesimError(f"{where}: code chunk must be 2-D [tokens, latents], got shape {arr.shape}")
        m = sp.csr_matrix(arr)
    if n_latents is not None and m.shape[1] != n_latents:
        raise SaesimError(f"{where}: code chunk has {m.shape[1]} latents, expected {n_latents}")
    if not np.isfinite(m.data).all():
        raise SaesimError(f"{where}: non-finite latent activation (NaN/inf) in a code chunk")
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def collect_codes(
    chunks: Iterable[Any],
    n_latents: int | None = None,
    *,
    latent_major: bool = False,
    name: str = "codes",
) -> SparseCodes:
    """Concatenate token-major code chunks (CSR or dense ``[rows, n_latents]``) in order.

    Moments are accumulated per chunk in float64.  With ``latent_major=True`` the
    result is transposed once at the end (needed for the A side of a comparison).
    """
    data, indices, row_nnz = [], [], []
    sums = sums_sq = counts = None
    n_tokens = 0
    for chunk in chunks:
        m = _as_csr_chunk(chunk, n_latents, name)
        if n_latents is None:
            n_latents = m.shape[1]
        s, s2, c = chunk_moments(m)
        if sums is None:
            sums, sums_sq, counts = s, s2, c
        else:
            sums += s
            sums_sq += s2
            counts += c
        data.append(m.data.astype(np.float32, copy=False))
        indices.append(m.indices.astype(np.int32, copy=False))
        row_nnz.append(np.diff(m.indptr))
        n_tokens += m.shape[0]
    if n_latents is None or n_tokens == 0:
        raise SaesimError(f"{name}: no code chunks (no tokens to compare)")
    indptr = np.zeros(n_tokens + 1, dtype=np.int64)
    np.cumsum(np.concatenate(row_nnz), out=indptr[1:])
    all_data = np.concatenate(data).astype(np.float64)
    del data
    all_indices = np.concatenate(indices)
    del indices
    matrix = sp.csr_matrix((all_data, all_indices, indptr), shape=(n_tokens, n_latents), copy=False)
    stats = LatentStats(n_tokens, sums, sums_sq, counts)
    codes = SparseCodes(matrix, False, stats)
    return codes.as_latent_major() if latent_major else codes


# ---------------------------------------------------------------------------
# Encoders


@dataclass
class ArraySAE:
    """A ReLU SAE given as arrays: ``codes = relu((x - b_dec) @ W_enc + b_enc)``.

    ``W_enc`` is ``[d_in, n_latents]``, ``W_dec`` is ``[n_latents, d_in]`` (sae-lens
    layout).  Used for planted tests and synthetic benchmarks without sae-lens.
    """

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray | None = None

    def encode(self, x: np.ndarray) -> sp.csr_matrix:
        x = np.asarray(x, dtype=np.float32)
        if self.b_dec is not None:
            x = x - self.b_dec
        pre = x @ self.W_enc.astype(np.float32, copy=False) + self.b_enc.astype(np.float32, copy=False)
        np.maximum(pre, 0.0, out=pre)
        return sp.csr_matrix(pre)


def load_sae(path: str | os.PathLike, device: str = "cpu"):
    """Load an sae-lens SAE folder (``cfg.json`` + ``sae_weights.safetensors``): on the CPU as a
    :class:`saesim.saes.encoding.NumpySAE` where the numpy encoder reads its architecture (no
    sae-lens import, about 10 CPU-seconds a job), else with sae-lens."""
    path = Path(path)
    if not (path / "cfg.json").exists():
        raise SaesimError(f"{path}: not an SAE folder (no cfg.json)")
    if device == "cpu":
        from saesim.saes.encoding import numpy_sae

        sae = numpy_sae(path)
        if sae is not None:
            return sae
    from sae_lens import SAE  # heavy import (~10 CPU-s): architectures the numpy encoder cannot read, GPUs

    try:
        return SAE.load_from_disk(str(path), device=device)
    except Exception as exc:  # noqa: BLE001 - reported as one line naming the folder
        raise SaesimError(f"{path}: cannot load SAE ({exc.__class__.__name__}: {exc})") from None


def resolve_sae(sae: Any, device: str = "cpu") -> Any:
    """A path becomes a loaded sae-lens SAE; anything with ``.encode`` is returned as is."""
    if isinstance(sae, (str, os.PathLike)):
        return load_sae(sae, device)
    if not hasattr(sae, "encode"):
        raise SaesimError(f"SAE object of type {type(sae).__name__} has no encode() method")
    return sae


def decoder_of(sae: Any) -> np.ndarray:
    """The decoder of a loaded SAE object (sae-lens SAE, :class:`ArraySAE`) as float64
    ``[n_latents, d_in]``, one row per latent (from a folder: :func:`saesim.saes.loading.decoder_rows`)."""
    w = getattr(sae, "W_dec", None)
    if w is None:
        raise SaesimError(f"SAE object of type {type(sae).__name__} has no W_dec")
    if hasattr(w, "detach"):
        w = w.detach().float().cpu().numpy()
    return np.asarray(w, dtype=np.float64)


def _encode_block(sae: Any, block: np.ndarray, device: str) -> sp.csr_matrix:
    if hasattr(sae, "parameters"):  # a torch module (sae-lens SAE)
        import torch

        dtype = next(sae.parameters()).dtype
        with torch.no_grad():
            acts = sae.encode(torch.from_numpy(block).to(device=device, dtype=dtype))
        return sp.csr_matrix(acts.float().cpu().numpy())
    out = sae.encode(block)
    return sp.csr_matrix(out) if not sp.issparse(out) else out.tocsr()


def iter_selected_rows(
    store: ActivationStore, rows: np.ndarray | None, chunk_rows: int
) -> Iterator[np.ndarray]:
    """Blocks of at most ``chunk_rows`` store rows, in order; ``rows`` (increasing) selects them."""
    if rows is None:
        for _, block in store.iter_chunks(chunk_rows):
            yield block
        return
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows[0] < 0 or rows[-1] >= store.n_rows or np.any(np.diff(rows) <= 0)):
        raise SaesimError(
            f"{store.path}: selected rows must be strictly increasing and within [0, {store.n_rows})"
        )
    for s in range(0, rows.size, chunk_rows):
        group = rows[s : s + chunk_rows]
        parts = []
        # read the group's span in pieces of at most 4 * chunk_rows rows
        span_start = int(group[0])
        while span_start <= group[-1]:
            span_stop = min(span_start + 4 * chunk_rows, int(group[-1]) + 1)
            lo, hi = np.searchsorted(group, [span_start, span_stop])
            if hi > lo:
                block = store.read_rows(span_start, span_stop)
                parts.append(block[group[lo:hi] - span_start])
            span_start = span_stop if hi == group.size else max(span_stop, int(group[hi]))
        yield np.concatenate(parts)


def encode_sparse(
    sae: Any,
    store: ActivationStore | str | os.PathLike,
    chunk_rows: int = 1024,
    rows: np.ndarray | None = None,
    device: str = "cpu",
) -> Iterator[sp.csr_matrix]:
    """Yield, per chunk of store rows, the SAE's latent activations as CSR ``[rows, n_latents]``.

    ``sae`` is an sae-lens SAE folder, a loaded sae-lens SAE, or any object with
    ``encode(np.ndarray) -> array | sparse`` (e.g. :class:`ArraySAE`).  The dense
    encoder output of one chunk (``chunk_rows x n_latents`` float32) is the
    largest transient: keep ``chunk_rows`` near 1024 for 32k-latent SAEs.
    """
    if not isinstance(store, ActivationStore):
        store = open_store(store)
    sae = resolve_sae(sae, device)
    for block in iter_selected_rows(store, rows, chunk_rows):
        yield _encode_block(sae, block, device)
