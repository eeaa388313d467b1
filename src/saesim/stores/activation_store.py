"""HDF5 activation stores: one file holds the activations of one hook point.

Layout (format ``saesim.activation_store/1``)::

    /activations   [n_rows, d]  float32 or float16, chunked (chunk_rows, d)
    /token_ids     [n_rows]     int32   (language models only)
    /positions     [n_rows]     int32   position of the token in its context
    /context_ids   [n_rows]     int32   index of the context the row came from
    /ground_truth/ (toy models only) features [n_features, d], firing_probabilities,
                   correlation_matrix, ... ; anything a producer wants to keep
    attrs: format, model, hook, dtype, n_rows, d, content_hash (sha256 over the
           stored bytes of every dataset above, in order), saesim_version,
           producer (JSON: versions of torch/h5py/...), config (JSON), complete

A store is complete or absent: :class:`StoreWriter` writes to a temporary name in
the same directory and renames it into place only after the last byte and the
hash are written.  A killed job leaves at most a ``*.partial-*`` file that no
reader accepts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from saesim import __version__
from saesim.errors import SaesimError

STORE_FORMAT = "saesim.activation_store/1"
ROW_DATASETS = ("token_ids", "positions", "context_ids")
_DTYPES = {"float32": np.float32, "float16": np.float16}


def producer_versions() -> dict[str, str]:
    """Versions of the packages that shape the bytes of an artifact."""
    import importlib.metadata as md

    out = {"saesim": __version__, "numpy": np.__version__, "h5py": h5py.__version__}
    for name in ("torch", "sae-lens", "transformer-lens", "transformers"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _write_error_reason(exc: BaseException) -> tuple[bool, str]:
    """(disk full?, short reason) of a failed write: an ``OSError`` or h5py's wrapped HDF5
    error (a ``RuntimeError``/``OSError`` whose text holds ``errno = 28``)."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    match = re.search(r"errno = (\d+)", text)
    if code is None and match:
        code = int(match.group(1))
    full = code == errno.ENOSPC or "No space left on device" in text
    if code is not None and not full:
        return False, os.strerror(code)
    return full, " ".join(text.split())[:200] or type(exc).__name__


#: HDF5 handles of stores whose writes failed, never closed (see :meth:`StoreWriter.abort`).
_FAILED_HANDLES: list = []


class StoreWriter:
    """Append rows to a new store; publish it atomically on :meth:`close`.

    Use as a context manager: leaving the block by an exception removes the
    temporary file, so no partial store is ever visible under ``path``.  A failed
    write (a full disk above all) removes the temporary file and raises one
    :class:`SaesimError` naming the store.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        d: int,
        *,
        dtype: str = "float32",
        chunk_rows: int = 4096,
        with_tokens: bool = False,
        attrs: Mapping[str, Any] | None = None,
    ):
        if dtype not in _DTYPES:
            raise SaesimError(f"{path}: store dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        self.path = Path(path)
        self.d = int(d)
        self.dtype = np.dtype(_DTYPES[dtype])
        self.chunk_rows = int(chunk_rows)
        self.with_tokens = with_tokens
        self.attrs = dict(attrs or {})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f"{self.path.name}.partial-*"):  # left by a killed job
            stale.unlink(missing_ok=True)
        self.tmp_path = self.path.with_name(f"{self.path.name}.partial-{os.getpid()}")
        self._file = None
        self._n = 0
        self._hashers = {"activations": hashlib.sha256()}
        # Dataset handles stay open for the writer's life: a chunk that fails to reach
        # the disk then fails the write call itself (h5py only prints, and ignores, an
        # error raised while it releases a handle).
        self._ds: dict[str, h5py.Dataset] = {}
        with self._writing():
            self._file = h5py.File(self.tmp_path, "w")
            self._ds["activations"] = self._file.create_dataset(
                "activations",
                shape=(0, self.d),
                maxshape=(None, self.d),
                dtype=self.dtype,
                chunks=(min(self.chunk_rows, 1 << 20), self.d),
            )
            if with_tokens:
                for name in ROW_DATASETS:
                    self._ds[name] = self._file.create_dataset(
                        name, shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(self.chunk_rows,)
                    )
                    self._hashers[name] = hashlib.sha256()

    def _disk_full(self, detail: str = "") -> SaesimError:
        return SaesimError(
            f"{self.path}: disk is full (no space left on device{detail} while writing the store); "
            "the partial file was removed"
        )

    def _check_space(self, nbytes: int) -> None:
        """Refuse to write ``nbytes`` more when the disk cannot take them, plus what HDF5 may
        still hold back (a chunk and the chunk cache per dataset) and 1 MiB for metadata:
        HDF5 cannot survive a full disk (closing such a file crashes the process), so the
        writer stops before it gets there."""
        try:
            st = os.statvfs(self.tmp_path.parent)
        except (OSError, AttributeError):  # no statvfs (Windows): rely on the write errors
            return
        if st.f_blocks == 0:  # a file system that reports no sizes (some FUSE mounts): rely on the write errors
            return
        free = st.f_bavail * st.f_frsize
        need = int(nbytes) + (1 << 20)
        for ds in self._ds.values():
            chunk = int(np.prod(ds.chunks, dtype=np.int64)) * ds.dtype.itemsize
            written = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
            need += chunk + min(written, int(ds.id.get_access_plist().get_chunk_cache()[1]))
        if free < need:
            self.abort()
            raise self._disk_full(f": {free / 2**20:.1f} MiB free, {need / 2**20:.1f} MiB needed")

    @contextmanager
    def _writing(self):
        """Turn a failed write into one line naming the store, after removing the partial file."""
        try:
            yield
        except (OSError, RuntimeError) as exc:
            full, reason = _write_error_reason(exc)
            self.abort(close=False)
            if full:
                raise self._disk_full() from None
            raise SaesimError(f"{self.path}: cannot write the store ({reason}); the partial file was removed") from None

    @property
    def n_rows(self) -> int:
        return self._n

    def append(
        self,
        activations: np.ndarray,
        *,
        token_ids: np.ndarray | None = None,
        positions: np.ndarray | None = None,
        context_ids: np.ndarray | None = None,
    ) -> None:
        """Append ``[rows, d]`` activations (and, for token stores, their token metadata)."""
        acts = np.ascontiguousarray(activations, dtype=self.dtype)
        if acts.ndim != 2 or acts.shape[1] != self.d:
            raise SaesimError(f"{self.path}: expected activations of shape [rows, {self.d}], got {acts.shape}")
        if not np.isfinite(acts).all():
            bad = int(np.flatnonzero(~np.isfinite(acts).all(axis=1))[0]) + self._n
            raise SaesimError(f"{self.path}: non-finite activation (NaN/inf) at row {bad}; refusing to write it")
        rows = acts.shape[0]
        meta = {"token_ids": token_ids, "positions": positions, "context_ids": context_ids}
        if self.with_tokens:
            for name, arr in meta.items():
                if arr is None or np.shape(arr) != (rows,):
                    raise SaesimError(f"{self.path}: {name} must be given with shape [{rows}]")
        elif any(v is not None for v in meta.values()):
            raise SaesimError(f"{self.path}: store was opened without token metadata")
        start, stop = self._n, self._n + rows
        self._check_space(acts.nbytes + (3 * 4 * rows if self.with_tokens else 0))
        with self._writing():
            ds = self._ds["activations"]
            ds.resize(stop, axis=0)
            ds[start:stop] = acts
            self._hashers["activations"].update(acts.tobytes())
            if self.with_tokens:
                for name, arr in meta.items():
                    arr = np.ascontiguousarray(arr, dtype=np.int32)
                    self._ds[name].resize(stop, axis=0)
                    self._ds[name][start:stop] = arr
                    self._hashers[name].update(arr.tobytes())
        self._n = stop

    def add_group(self, name: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None):
        """Keep extra arrays (e.g. the toy model's ground-truth features) in the store."""
        for key, arr in arrays.items():
            arr = np.asarray(arr)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                raise SaesimError(f"{self.path}: {name}/{key} holds NaN/inf; refusing to write it")
        self._check_space(sum(np.asarray(a).nbytes for a in arrays.values()))
        with self._writing():
            group = self._file.require_group(name)
            for key, arr in arrays.items():
                arr = np.ascontiguousarray(arr)
                group.create_dataset(key, data=arr)
                self._hashers[f"{name}/{key}"] = hashlib.sha256(arr.tobytes())
            for key, value in (attrs or {}).items():
                group.attrs[key] = value

    def close(self) -> Path:
        """Write the attributes and hash, then rename the store into place."""
        if self._n == 0:
            self.abort()
            raise SaesimError(f"{self.path}: no rows were written")
        total = hashlib.sha256()
        for name in sorted(self._hashers):
            total.update(name.encode())
            total.update(self._hashers[name].digest())
        attrs = {
            "format": STORE_FORMAT,
            "n_rows": self._n,
            "d": self.d,
            "dtype": self.dtype.name,
            "content_hash": total.hexdigest(),
            "saesim_version": __version__,
            "producer": json.dumps(producer_versions(), sort_keys=True),
        }
        for key, value in self.attrs.items():
            attrs[key] = value if isinstance(value, (str, int, float, bool, np.number)) else json.dumps(value, sort_keys=True)
        self._check_space(0)
        with self._writing():
            for key, value in attrs.items():
                self._file.attrs[key] = value
            # the attributes decide how the rows are read (n_rows, d, dtype, hook, the synthetic
            # config...): hashed apart from content_hash, which stays a hash of the data alone
            self._file.attrs[ATTRS_HASH_KEY] = attrs_sha256(self._file)
            self._file.attrs["complete"] = True
            self._file.flush()
            self._ds.clear()
            self._file.close()
            os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self, *, close: bool = True) -> None:
        """Remove the temporary file. ``close=False`` after a failed HDF5 write: closing such a
        file flushes a cache HDF5 cannot write and crashes the process, so its handles are kept
        open (in :data:`_FAILED_HANDLES`) until the process ends."""
        handles = (self._file, dict(self._ds))
        self._file, self._ds = None, {}  # close once: a second close after a failed one crashes HDF5
        if not close and handles[0] is not None:
            try:
                os.truncate(self.tmp_path, 0)  # frees the space while HDF5 holds the file open
            except OSError:
                pass
        self.tmp_path.unlink(missing_ok=True)
        if handles[0] is None:
            return
        if not close:
            _FAILED_HANDLES.append(handles)
            return
        handles[1].clear()
        try:
            handles[0].close()
        except Exception:  # noqa: BLE001 - file may already be closed
            pass

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass
class ActivationStore:
    """A complete, validated store opened read-only."""

    path: Path
    file: h5py.File

    @property
    def activations(self) -> h5py.Dataset:
        return self.file["activations"]

    @property
    def n_rows(self) -> int:
        return int(self.activations.shape[0])

    @property
    def d(self) -> int:
        return int(self.activations.shape[1])

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self.file.attrs.items()}

    @property
    def content_hash(self) -> str:
        return str(self.file.attrs["content_hash"])

    @property
    def has_tokens(self) -> bool:
        return "token_ids" in self.file

    def row_array(self, name: str) -> np.ndarray:
        if name not in self.file:
            raise SaesimError(f"{self.path}: store has no {name!r} dataset")
        return self.file[name][:]

    def group(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of a group (e.g. ``ground_truth``), refusing NaN/inf with the store named."""
        if name not in self.file:
            raise SaesimError(f"{self.path}: store has no {name!r} group")
        out = {k: v[()] for k, v in self.file[name].items()}
        for key, arr in out.items():
            arr = np.asarray(arr)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
                raise SaesimError(f"{self.path}: {name}/{key} holds {bad} NaN/inf value(s); the store is corrupt")
        return out

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as float32, refusing NaN/inf with the file and row named."""
        block = np.asarray(self.activations[start:stop], dtype=np.float32)
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise SaesimError(f"{self.path}: non-finite activation (NaN/inf) at row {bad}")
        return block

    def chunk_rows(self) -> int:
        chunks = self.activations.chunks
        return int(chunks[0]) if chunks else 4096

    def iter_chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start_row, block)`` in file order with bounded memory."""
        step = chunk_rows or self.chunk_rows()
        for start in range(0, self.n_rows, step):
            yield start, self.read_rows(start, min(start + step, self.n_rows))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "ActivationStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(path: str | os.PathLike) -> ActivationStore:
    """Open a store for reading; any problem is one :class:`SaesimError` naming the file."""
    path = Path(path)
    if not path.exists():
        from saesim.errors import missing_path_reason

        reason = missing_path_reason(path)
        raise SaesimError(f"{path}: activation store does not exist" if reason.startswith("no such") else f"{path}: {reason}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SaesimError(f"{path}: not an HDF5 activation store ({exc.__class__.__name__})") from None
    if f.attrs.get("format") != STORE_FORMAT:
        f.close()
        raise SaesimError(f"{path}: not a saesim activation store (format attribute is not {STORE_FORMAT!r})")
    if not bool(f.attrs.get("complete", False)):
        f.close()
        raise SaesimError(f"{path}: activation store is incomplete (written by a job that did not finish)")
    if "activations" not in f or f["activations"].ndim != 2:
        f.close()
        raise SaesimError(f"{path}: store has no 2-D 'activations' dataset")
    n = f["activations"].shape[0]
    for name in ROW_DATASETS:
        if name in f and f[name].shape != (n,):
            f.close()
            raise SaesimError(f"{path}: {name} has {f[name].shape[0]} rows but activations have {n}")
    return ActivationStore(path=path, file=f)


def compute_content_hash(store: ActivationStore, chunk_rows: int | None = None, *, check_finite: bool = False) -> str:
    """The store's content hash recomputed from its bytes, as :class:`StoreWriter` computes it:
    sha256 per dataset (the row datasets streamed ``chunk_rows`` rows at a time, so memory is
    bounded), then sha256 over the sorted (name, digest) pairs. ``check_finite``: in the same
    pass, a NaN/inf activation is one :class:`SaesimError` naming the file and row."""
    f = store.file
    digests: dict[str, bytes] = {}
    step = chunk_rows or store.chunk_rows()
    for name in ("activations", *ROW_DATASETS):
        if name not in f:
            continue
        h = hashlib.sha256()
        ds = f[name]
        for start in range(0, ds.shape[0], step):
            block = np.ascontiguousarray(ds[start : start + step])
            if check_finite and name == "activations" and not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise SaesimError(f"{store.path}: non-finite activation (NaN/inf) at row {bad}")
            h.update(block.tobytes())
        digests[name] = h.digest()
    for group_name, group in f.items():
        if isinstance(group, h5py.Group):
            for key, ds in group.items():
                if isinstance(ds, h5py.Dataset):
                    digests[f"{group_name}/{key}"] = hashlib.sha256(np.ascontiguousarray(ds[()]).tobytes()).digest()
    total = hashlib.sha256()
    for name in sorted(digests):
        total.update(name.encode())
        total.update(digests[name])
    return total.hexdigest()


#: root attribute holding :func:`attrs_sha256` of a store
ATTRS_HASH_KEY = "attrs_sha256"
#: attributes outside the attribute hash: the hash itself, and the completion flag written after it
_UNHASHED_ATTRS = {ATTRS_HASH_KEY, "complete"}


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_attr_value(v) for v in value.tolist()]
    if hasattr(value, "item"):
        return value.item()
    return value


def attrs_sha256(f: h5py.File) -> str:
    """sha256 over every attribute of the file and of its groups (name, value as JSON), sorted,
    except :data:`ATTRS_HASH_KEY` and ``complete``."""
    items = [(k, _attr_value(v)) for k, v in f.attrs.items() if k not in _UNHASHED_ATTRS]
    for gname, group in f.items():
        if isinstance(group, h5py.Group):
            items += [(f"{gname}/{k}", _attr_value(v)) for k, v in group.attrs.items()]
    return hashlib.sha256(json.dumps(sorted(items), sort_keys=True, default=str).encode()).hexdigest()


def verify_store_attrs(store: ActivationStore) -> str | None:
    """Check the store's attributes against the ``attrs_sha256`` recorded when it was written;
    return it (None for a store written before attributes were hashed)."""
    recorded = store.attrs.get(ATTRS_HASH_KEY)
    if recorded is None:
        return None
    actual = attrs_sha256(store.file)
    if actual != recorded:
        raise SaesimError(
            f"{store.path}: attribute hash mismatch: attributes that decide how the store is read "
            f"(n_rows, hook, config, ...) changed after it was written (recorded {str(recorded)[:16]}..., "
            f"now {actual[:16]}...)"
        )
    return actual


def check_store_unchanged(store: ActivationStore) -> str:
    """One pass over an open store: no NaN/inf activation, and its bytes still hash to the
    ``content_hash`` recorded when it was written (one :class:`SaesimError` naming the file
    otherwise). Returns the hash. What reuses results keyed by ``content_hash`` (the
    trained-SAE cache, resume checkpoints) calls this first: a stale hash must not bring
    back SAEs trained on other data."""
    recorded = store.attrs.get("content_hash")
    if not recorded:
        raise SaesimError(f"{store.path}: store has no content_hash attribute to verify against")
    actual = compute_content_hash(store, check_finite=True)
    if actual != recorded:
        raise SaesimError(
            f"{store.path}: content hash mismatch: the store's bytes changed after it was written "
            f"(recorded {str(recorded)[:16]}..., now {actual[:16]}...); rebuild it (delete it and rerun)"
        )
    verify_store_attrs(store)
    return actual


def verify_store(path: str | os.PathLike) -> str:
    """Open a store and check its bytes against the ``content_hash`` recorded when it was
    written; return the hash. A mismatch is one :class:`SaesimError` naming the file.

    This reads the whole store once (about as long as a pass over it); the workflow's rules
    do not call it (see the README), ``saesim verify`` does.
    """
    with open_store(path) as store:
        recorded = store.attrs.get("content_hash")
        if not recorded:
            raise SaesimError(f"{store.path}: store has no content_hash attribute to verify against")
        actual = compute_content_hash(store)
        if actual == recorded:
            verify_store_attrs(store)
    if actual != recorded:
        raise SaesimError(
            f"{store.path}: content hash mismatch: the store's bytes changed after it was written "
            f"(recorded {str(recorded)[:16]}..., now {actual[:16]}...)"
        )
    return actual


def iter_shuffled_batches(
    store: ActivationStore,
    batch_size: int,
    *,
    seed: int,
    chunk_rows: int | None = None,
    buffer_chunks: int = 4,
    row_mask: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Endless stream of float32 ``[batch_size, d]`` batches in a seeded shuffled order.

    Memory is bounded by ``buffer_chunks * chunk_rows * d``: each epoch visits the
    store's chunks in a random order, loads ``buffer_chunks`` of them at a time,
    shuffles their rows together and yields batches.  The order depends only on
    ``seed`` and the store, so the same seed gives the same batches.
    """
    if row_mask is not None and not row_mask.any():
        raise SaesimError(f"{store.path}: no rows left for training after excluding positions")
    rng = np.random.default_rng(seed)
    step = chunk_rows or store.chunk_rows()
    starts = np.arange(0, store.n_rows, step)
    carry = np.empty((0, store.d), dtype=np.float32)
    while True:
        order = rng.permutation(len(starts))
        for i in range(0, len(order), buffer_chunks):
            blocks = []
            for j in order[i : i + buffer_chunks]:
                start = int(starts[j])
                stop = min(start + step, store.n_rows)
                block = store.read_rows(start, stop)
                if row_mask is not None:
                    block = block[row_mask[start:stop]]
                blocks.append(block)
            buf = np.concatenate([carry, *blocks])
            buf = buf[rng.permutation(len(buf))]
            n_full = len(buf) // batch_size
            for b in range(n_full):
                yield buf[b * batch_size : (b + 1) * batch_size]
            carry = buf[n_full * batch_size :]
