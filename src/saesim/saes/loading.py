"""Reading SAE weights from disk without importing sae-lens or transformer-lens.

Importing sae-lens costs about 7 s per process, more than a whole comparison
of small SAEs, so checkpoints on disk are read here with ``safetensors``
directly. Supported:

* a sae-lens folder: ``cfg.json`` + ``sae_weights.safetensors`` with
  ``W_dec`` [d_sae, d_in] and ``W_enc`` [d_in, d_sae];
* a sparsify (EleutherAI) folder: ``cfg.json`` + ``sae.safetensors`` with
  ``W_dec`` [num_latents, d_in] and ``encoder.weight`` [num_latents, d_in];
* a sae-lens pretrained id ``release:sae_id``, resolved through sae-lens
  (the only case that imports it).

Any problem raises :class:`~saesim.errors.SaesimError` with one line naming
the file and the problem.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saesim.errors import SaesimError

SAE_LENS_WEIGHTS = "sae_weights.safetensors"
SPARSIFY_WEIGHTS = "sae.safetensors"
CFG_FILE = "cfg.json"

__all__ = ["LazyTensor", "SAEWeights", "check_same_d_in", "decoder_rows", "is_pretrained_id", "load_sae_weights",
           "verify_sae_folder"]


@dataclass
class SAEWeights:
    """The weights of one SAE that similarity measures need, as float32 numpy arrays.

    ``W_dec`` is [d_sae, d_in] (one latent per row); ``W_enc`` is [d_in, d_sae]
    (one latent per column, as in sae-lens) or None when not loaded.
    """

    W_dec: np.ndarray
    W_enc: "np.ndarray | LazyTensor | None"
    b_dec: np.ndarray | None
    cfg: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    format: str = ""  # "sae_lens" | "sparsify"

    @property
    def d_sae(self) -> int:
        return int(self.W_dec.shape[0])

    @property
    def d_in(self) -> int:
        return int(self.W_dec.shape[1])


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and the offset where tensor data starts."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise SaesimError(f"{path}: not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", raw)
            if n > 100 * 2**20 or n > path.stat().st_size - 8:
                raise SaesimError(f"{path}: not a safetensors file (bad header length)")
            header = json.loads(f.read(n))
    except OSError as e:
        raise SaesimError(f"{path}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SaesimError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise SaesimError(f"{path}: not a safetensors file (header is not an object)")
    header.pop("__metadata__", None)
    return header, 8 + n


def _read_bf16(path: Path, info: dict[str, Any], data_start: int) -> np.ndarray:
    """A bfloat16 tensor as float32 (numpy has no bfloat16): the 16 bits are the top half of a float32."""
    begin, end = info["data_offsets"]
    raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2, offset=data_start + begin)
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


def _read_tensors(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The named tensors of a safetensors file (those present), each as float32 numpy."""
    from safetensors import safe_open

    header, data_start = _safetensors_header(path)
    out: dict[str, np.ndarray] = {}
    wanted = [n for n in names if n in header]
    try:
        with safe_open(str(path), framework="numpy") as f:
            for name in wanted:
                info = header[name]
                if info.get("dtype") == "BF16":
                    arr = _read_bf16(path, info, data_start)
                else:
                    arr = f.get_tensor(name)
                if not np.issubdtype(arr.dtype, np.floating):
                    raise SaesimError(f"{path}: tensor {name} has dtype {arr.dtype}, expected floating point")
                out[name] = np.asarray(arr, dtype=np.float32)
    except SaesimError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SaesimError(f"{path}: cannot read safetensors ({msg})") from None
    return out


# stored dtypes a LazyTensor reads (numpy dtype of the raw bytes; BF16 is widened by hand)
_RAW_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2"}
# bytes read at once when a LazyTensor walks over its whole stored tensor
_LAZY_BAND_BYTES = 32 * 2**20


class LazyTensor:
    """A 2-D float tensor of a safetensors file, read as float32 when rows of it are asked for.

    Holds no data: ``x[i0:i1]`` and ``x[int_array]`` read those rows from the
    file (float32, exactly the values an eager load gives, laid out in memory
    as numpy lays out the same slice or gather of the eager array, so that
    products with them round alike),
    ``x.T`` is the transposed view (rows = the stored tensor's columns, read
    with one short read per stored row), ``np.asarray(x)`` reads it all.
    :mod:`saesim.similarity` reads such rows chunk by chunk (see its
    ``_as_matrix``), so ``saesim compare`` never holds two whole encoders
    (1.1 GiB at 65,536 x 2,304). The file must not change while it is used.
    """

    is_row_source = True
    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, path: Path, offset: int, stored_shape: tuple[int, int], st_dtype: str,
                 name: str, transposed: bool = False):
        self.path, self.offset, self.stored_shape = Path(path), int(offset), tuple(int(x) for x in stored_shape)
        self.st_dtype, self.name, self.transposed = st_dtype, name, transposed
        self._raw = np.dtype(_RAW_DTYPES[st_dtype])

    @property
    def shape(self) -> tuple[int, int]:
        s0, s1 = self.stored_shape
        return (s1, s0) if self.transposed else (s0, s1)

    @property
    def T(self) -> "LazyTensor":
        return LazyTensor(self.path, self.offset, self.stored_shape, self.st_dtype, self.name, not self.transposed)

    def __len__(self) -> int:
        return self.shape[0]

    def _float32(self, raw: np.ndarray) -> np.ndarray:
        """Raw stored values as float32, elementwise as the eager reader converts them."""
        if self.st_dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32)
        return np.asarray(raw, dtype=np.float32)

    def _read_error(self, what: str) -> SaesimError:
        return SaesimError(f"{self.path}: cannot read tensor {self.name} ({what}); did the file change?")

    def _stored_rows(self, k0: int, k1: int) -> np.ndarray:
        """Stored rows k0:k1, raw dtype, [k1 - k0, s1]."""
        s1 = self.stored_shape[1]
        count = (k1 - k0) * s1
        try:
            raw = np.fromfile(self.path, dtype=self._raw, count=count, offset=self.offset + k0 * s1 * self._raw.itemsize)
        except OSError as e:
            raise self._read_error(e.strerror or str(e)) from None
        if raw.size != count:
            raise self._read_error("file too short")
        return raw.reshape(k1 - k0, s1)

    def _stored_cols(self, i0: int, i1: int) -> np.ndarray:
        """Stored columns i0:i1 of every stored row, raw dtype, [s0, i1 - i0]: one read per row."""
        s0, s1 = self.stored_shape
        isz = self._raw.itemsize
        out = np.empty((s0, i1 - i0), dtype=self._raw)
        want = (i1 - i0) * isz
        try:
            with open(self.path, "rb", buffering=0) as f:
                for k in range(s0):
                    f.seek(self.offset + (k * s1 + i0) * isz)
                    if f.readinto(memoryview(out[k]).cast("B")) != want:
                        raise self._read_error("file too short")
        except OSError as e:
            raise self._read_error(e.strerror or str(e)) from None
        return out

    def _bands(self):
        """(k0, k1) ranges of stored rows of about _LAZY_BAND_BYTES each."""
        s0, s1 = self.stored_shape
        step = max(1, _LAZY_BAND_BYTES // max(1, s1 * self._raw.itemsize))
        for k0 in range(0, s0, step):
            yield k0, min(s0, k0 + step)

    def __getitem__(self, key) -> np.ndarray:
        n, d = self.shape
        if isinstance(key, slice):
            i0, i1, step = key.indices(n)
            if step != 1:
                raise IndexError("LazyTensor: only contiguous row slices")
            i1 = max(i0, i1)
            if self.transposed:  # column-major, as a copy of a slice of the eager W.T is (same products)
                return self._float32(self._stored_cols(i0, i1)).T
            return self._float32(self._stored_rows(i0, i1))
        idx = np.asarray(key)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise IndexError("LazyTensor: index rows with a slice or a 1-D integer array")
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"LazyTensor: row index out of range for {n} rows")
        out = np.empty((idx.size, d), dtype=np.float32)
        for k0, k1 in self._bands():  # one pass over the file, a band of stored rows at a time
            band = self._stored_rows(k0, k1)
            if self.transposed:
                out[:, k0:k1] = self._float32(band[:, idx]).T
            else:
                sel = np.flatnonzero((idx >= k0) & (idx < k1))
                out[sel] = self._float32(band[idx[sel] - k0])
        return out

    def __array__(self, dtype=None, copy=None):
        full = self[0 : len(self)]
        return full if dtype is None else full.astype(dtype, copy=False)

    def check_finite(self) -> None:
        """Refuse non-finite values with the eager reader's one-line error, reading a band at a time."""
        bad, kinds = 0, set()
        for k0, k1 in self._bands():
            band = self._float32(self._stored_rows(k0, k1))
            nb = band.size - int(np.count_nonzero(np.isfinite(band)))
            if nb:
                bad += nb
                if np.isnan(band).any():
                    kinds.add("NaN")
                if np.isinf(band).any():
                    kinds.add("inf")
        if bad:
            shown = "/".join(k for k in ("NaN", "inf") if k in kinds)
            raise SaesimError(f"{self.path}: {self.name} has {bad} non-finite values ({shown})")


def _lazy_tensor(file: Path, name: str) -> LazyTensor | None:
    """A LazyTensor for a 2-D float tensor ``name`` of ``file``, or None when it is absent or not
    readable lazily (then the eager reader gives the same values or the usual error)."""
    header, data_start = _safetensors_header(file)
    info = header.get(name)
    if not isinstance(info, dict) or info.get("dtype") not in _RAW_DTYPES:
        return None
    shape, offs = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(offs, list) and len(offs) == 2):
        return None
    begin, end = offs
    itemsize = np.dtype(_RAW_DTYPES[info["dtype"]]).itemsize
    if end - begin != shape[0] * shape[1] * itemsize or data_start + end > file.stat().st_size:
        return None
    return LazyTensor(file, data_start + begin, (shape[0], shape[1]), info["dtype"], name)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def _read_cfg(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(path.read_text())
    except OSError as e:
        raise SaesimError(f"{path}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SaesimError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise SaesimError(f"{path}: expected a JSON object")
    return cfg


def _check_finite(arr: np.ndarray, file: Path, name: str) -> None:
    bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
    if bad:
        kinds = []
        if np.isnan(arr).any():
            kinds.append("NaN")
        if np.isinf(arr).any():
            kinds.append("inf")
        raise SaesimError(f"{file}: {name} has {bad} non-finite values ({'/'.join(kinds)})")


def _check_directions(W_dec: np.ndarray, file: Path) -> None:
    """Refuse a decoder whose rows are all zero: it has no direction, so every similarity to it
    would read 0.0 as if measured. Some zero rows are allowed (they match nothing: |cos| 0)."""
    if W_dec.size == 0 or not np.any(W_dec):
        raise SaesimError(f"{file}: W_dec is all zeros ({W_dec.shape[0]} rows): a zero decoder has no direction to compare")


def _cfg_int(cfg: dict[str, Any], key: str, cfg_path: Path) -> int | None:
    v = cfg.get(key)
    if v is None:
        return None
    try:
        iv = int(v)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        raise SaesimError(f"{cfg_path}: {key} should be an integer, got {v!r}") from None
    if iv != v or iv < 0:
        raise SaesimError(f"{cfg_path}: {key} should be a non-negative integer, got {v!r}")
    return iv


def _check_not_empty(W_dec: np.ndarray, file: Path) -> None:
    if W_dec.shape[0] == 0 or W_dec.shape[1] == 0:
        raise SaesimError(f"{file}: empty dictionary: W_dec has shape {list(W_dec.shape)} (no latents or no input dimensions)")


def _need(tensors: dict[str, np.ndarray], name: str, file: Path, present: list[str]) -> np.ndarray:
    if name not in tensors:
        shown = ", ".join(present[:8]) + (", ..." if len(present) > 8 else "")
        raise SaesimError(f"{file}: no {name} tensor, not an SAE checkpoint (tensors: {shown or 'none'})")
    return tensors[name]


# --------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------


def _load_sae_lens(folder: Path, with_encoder: bool, lazy_encoder: bool = False) -> SAEWeights:
    cfg_path, file = folder / CFG_FILE, folder / SAE_LENS_WEIGHTS
    cfg = _read_cfg(cfg_path)
    header, _ = _safetensors_header(file)
    lazy = _lazy_tensor(file, "W_enc") if with_encoder and lazy_encoder else None
    names = ["W_dec", "b_dec"] + (["W_enc"] if with_encoder and lazy is None else [])
    t = _read_tensors(file, names)
    if lazy is not None:
        t["W_enc"] = lazy
    W_dec = _need(t, "W_dec", file, list(header))
    if W_dec.ndim != 2:
        raise SaesimError(f"{file}: W_dec should be 2-D [d_sae, d_in], got shape {list(W_dec.shape)}")
    d_sae, d_in = _cfg_int(cfg, "d_sae", cfg_path), _cfg_int(cfg, "d_in", cfg_path)
    expect = (d_sae if d_sae is not None else W_dec.shape[0], d_in if d_in is not None else W_dec.shape[1])
    if W_dec.shape != expect:
        raise SaesimError(
            f"{file}: W_dec has shape {list(W_dec.shape)} but {CFG_FILE} says [d_sae, d_in] = {list(expect)}"
        )
    _check_not_empty(W_dec, file)
    _check_finite(W_dec, file, "W_dec")
    _check_directions(W_dec, file)
    W_enc = t.get("W_enc")
    if W_enc is not None:
        if W_enc.shape != (expect[1], expect[0]):
            raise SaesimError(
                f"{file}: W_enc has shape {list(W_enc.shape)}, expected [d_in, d_sae] = {[expect[1], expect[0]]}"
            )
        if isinstance(W_enc, LazyTensor):
            W_enc.check_finite()
        else:
            _check_finite(W_enc, file, "W_enc")
    elif with_encoder:
        raise SaesimError(f"{file}: no W_enc tensor")
    b_dec = t.get("b_dec")
    if b_dec is not None:
        _check_finite(b_dec, file, "b_dec")
    return SAEWeights(W_dec=W_dec, W_enc=W_enc, b_dec=b_dec, cfg=cfg, source=str(folder), format="sae_lens")


def _orient(W: np.ndarray, n: int | None, d: int | None, file: Path, name: str) -> np.ndarray:
    """``W`` as [n_latents, d_in], transposing it if it is stored the other way round."""
    if W.ndim != 2:
        raise SaesimError(f"{file}: {name} should be 2-D, got shape {list(W.shape)}")
    rows_ok = (n is None or W.shape[0] == n) and (d is None or W.shape[1] == d)
    if rows_ok:
        return W
    if (n is None or W.shape[1] == n) and (d is None or W.shape[0] == d):
        return W.T
    raise SaesimError(
        f"{file}: {name} has shape {list(W.shape)}, which fits neither [num_latents, d_in] nor "
        f"[d_in, num_latents] with num_latents={n} and d_in={d} from {CFG_FILE}"
    )


def _load_sparsify(folder: Path, with_encoder: bool, lazy_encoder: bool = False) -> SAEWeights:
    cfg_path, file = folder / CFG_FILE, folder / SPARSIFY_WEIGHTS
    cfg = _read_cfg(cfg_path)
    header, _ = _safetensors_header(file)
    lazy = _lazy_tensor(file, "encoder.weight") if with_encoder and lazy_encoder else None
    names = ["W_dec", "b_dec"] + (["encoder.weight"] if with_encoder and lazy is None else [])
    t = _read_tensors(file, names)
    if lazy is not None:
        t["encoder.weight"] = lazy
    W = _need(t, "W_dec", file, list(header))
    d_in = _cfg_int(cfg, "d_in", cfg_path)
    n = _cfg_int(cfg, "num_latents", cfg_path) or None  # sparsify writes 0 for "from expansion_factor"
    ef = _cfg_int(cfg, "expansion_factor", cfg_path)
    if n is None and d_in is not None and ef:
        n = d_in * ef
    if d_in is None and n is None:
        raise SaesimError(f"{cfg_path}: needs d_in and num_latents or expansion_factor to orient W_dec")
    W_dec = _orient(W, n, d_in, file, "W_dec")
    _check_not_empty(W_dec, file)
    _check_finite(W_dec, file, "W_dec")
    _check_directions(W_dec, file)
    n, d_in = W_dec.shape
    W_enc = None
    if with_encoder:
        E = _need(t, "encoder.weight", file, list(header))
        E = _orient(E, n, d_in, file, "encoder.weight")
        if isinstance(E, LazyTensor):
            E.check_finite()
        else:
            _check_finite(E, file, "encoder.weight")
        W_enc = E.T  # [d_in, num_latents], a view
    b_dec = t.get("b_dec")
    if b_dec is not None:
        _check_finite(b_dec, file, "b_dec")
    return SAEWeights(W_dec=W_dec, W_enc=W_enc, b_dec=b_dec, cfg=cfg, source=str(folder), format="sparsify")


# --------------------------------------------------------------------------
# Pretrained ids
# --------------------------------------------------------------------------


def is_pretrained_id(spec: str) -> bool:
    """Whether ``spec`` reads as a sae-lens pretrained id ``release:sae_id`` rather than a path."""
    if os.path.exists(spec) or ":" not in spec:
        return False
    release, _, sae_id = spec.partition(":")
    return bool(release) and bool(sae_id) and "/" not in release and "\\" not in release


def _load_pretrained(spec: str, with_encoder: bool) -> SAEWeights:
    release, _, sae_id = spec.partition(":")
    from saesim.sources.hub import hub_reachable

    offline = not hub_reachable()
    if offline:
        # read only the local cache rather than retrying the network for a minute
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from sae_lens import SAE  # the only place saesim imports sae-lens

        loaded = SAE.from_pretrained(release, sae_id, device="cpu")
    except ImportError as e:
        raise SaesimError(f"{spec}: pretrained ids need sae-lens, which cannot be imported ({e})") from None
    except Exception as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
        if offline:
            raise SaesimError(
                f"{spec}: cannot load this sae-lens pretrained SAE offline (huggingface.co unreachable "
                f"and not in the local cache): {reason}"
            ) from None
        raise SaesimError(f"{spec}: sae-lens could not load this pretrained SAE: {reason}") from None
    sae = loaded[0] if isinstance(loaded, tuple) else loaded
    W_dec = sae.W_dec.detach().float().cpu().numpy()
    W_enc = sae.W_enc.detach().float().cpu().numpy() if with_encoder and hasattr(sae, "W_enc") else None
    b_dec = sae.b_dec.detach().float().cpu().numpy() if hasattr(sae, "b_dec") else None
    _check_not_empty(W_dec, Path(spec))
    _check_finite(W_dec, Path(spec), "W_dec")
    _check_directions(W_dec, Path(spec))
    if W_enc is not None:
        _check_finite(W_enc, Path(spec), "W_enc")
    cfg = sae.cfg.to_dict() if hasattr(sae.cfg, "to_dict") else {}
    return SAEWeights(W_dec=W_dec, W_enc=W_enc, b_dec=b_dec, cfg=cfg, source=spec, format="sae_lens")


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def load_sae_weights(path: str | os.PathLike, *, with_encoder: bool = True, lazy_encoder: bool = False) -> SAEWeights:
    """Read an SAE's weights from a sae-lens or sparsify folder, or a sae-lens pretrained id.

    ``path`` may also name the weights file inside such a folder. With
    ``lazy_encoder`` the encoder of a folder is a :class:`LazyTensor` (read
    from the file chunk by chunk when used, checked for non-finite values
    now) rather than an array in memory; pretrained ids load it as usual. Raises
    :class:`SaesimError` (one line naming the file and the problem) for a
    missing path, a folder that is not an SAE, unreadable or non-finite
    weights, or shapes that disagree with ``cfg.json``.
    """
    spec = os.fspath(path)
    if is_pretrained_id(spec):
        return _load_pretrained(spec, with_encoder)
    p = Path(spec)
    if not p.exists():
        from saesim.errors import missing_path_reason

        raise SaesimError(f"{p}: {missing_path_reason(p)}")
    if p.is_file():
        if p.name not in (SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS):
            raise SaesimError(
                f"{p}: not an SAE checkpoint (expected a folder with {CFG_FILE} and "
                f"{SAE_LENS_WEIGHTS} or {SPARSIFY_WEIGHTS})"
            )
        p = p.parent
    if not (p / CFG_FILE).is_file():
        raise SaesimError(f"{p}: not an SAE folder (no {CFG_FILE})")
    if (p / SAE_LENS_WEIGHTS).is_file():
        return _load_sae_lens(p, with_encoder, lazy_encoder)
    if (p / SPARSIFY_WEIGHTS).is_file():
        return _load_sparsify(p, with_encoder, lazy_encoder)
    raise SaesimError(f"{p}: not an SAE folder (no {SAE_LENS_WEIGHTS} or {SPARSIFY_WEIGHTS})")


def check_same_d_in(a: SAEWeights, b: SAEWeights) -> None:
    """Refuse two SAEs of different input dimensions, naming both (before any comparison)."""
    if a.d_in != b.d_in:
        raise SaesimError(
            f"{b.source}: d_in={b.d_in} does not match d_in={a.d_in} of {a.source}; "
            "decoders of different input spaces cannot be compared"
        )


def decoder_rows(path: str | os.PathLike) -> np.ndarray:
    """An SAE's decoder as float32 [d_sae, d_in], one latent direction per row."""
    return load_sae_weights(path, with_encoder=False).W_dec


METRICS_FILE = "metrics.json"


def verify_sae_folder(path: str | os.PathLike) -> str:
    """Check an SAE folder trained by saesim: its weights load (finite, shapes agree, not all
    zero) and their sha256 equals ``weights_sha256`` in ``metrics.json``; return it. Any
    problem is one :class:`SaesimError` naming the file."""
    from saesim.hashes import file_sha256  # the function that recorded the hash

    folder = Path(path)
    load_sae_weights(folder, with_encoder=False)
    metrics_path = folder / METRICS_FILE
    if not metrics_path.is_file():
        raise SaesimError(f"{folder}: no {METRICS_FILE}, so no recorded weights_sha256 to verify against")
    recorded = _read_cfg(metrics_path).get("weights_sha256")
    if not recorded:
        raise SaesimError(f"{metrics_path}: no weights_sha256 to verify against")
    weights = folder / SAE_LENS_WEIGHTS
    if not weights.is_file():
        raise SaesimError(f"{folder}: {METRICS_FILE} records weights_sha256 but there is no {SAE_LENS_WEIGHTS}")
    actual = file_sha256(weights)
    if actual != recorded:
        raise SaesimError(
            f"{weights}: sha256 mismatch: the weights changed after training "
            f"(recorded {str(recorded)[:16]}..., now {actual[:16]}...)"
        )
    cfg_recorded = _read_cfg(metrics_path).get("cfg_sha256")
    if cfg_recorded is not None:  # folders trained before cfg.json was hashed have none
        cfg_actual = file_sha256(folder / "cfg.json")
        if cfg_actual != cfg_recorded:
            raise SaesimError(
                f"{folder / 'cfg.json'}: sha256 mismatch: cfg.json (architecture, k, d_in: how the weights are "
                f"read) changed after training (recorded {str(cfg_recorded)[:16]}..., now {cfg_actual[:16]}...)"
            )
    return actual
