"""The versioned JSON contract of a comparison: ``saesim compare --json``, ``--matching`` and the workflow's pair JSONs.

Every comparison document carries

* ``schema_version`` (:data:`SCHEMA_VERSION`; the major number changes when a
  field is removed or changes meaning, the minor one when fields are added) and
  ``document`` (``"pair"``, ``"suite"`` or ``"matching"``);
* ``provenance``: the saesim version and the versions of the packages that shape
  the numbers, each input (its path or id, kind, format, shape and the sha256 of
  its weights), every option of the comparison and its seeds.

A matching document holds the complete one-to-one matching of a pair: the
matched latent ids of A and B with their |cos| (cos with ``cosine="signed"``)
and the ids left unmatched on each side.

The JSON Schema of all three ships in the package
(``saesim/schemas/compare.schema.json``, :func:`load_schema`); :func:`validate`
checks a document against it. Functions here are pure apart from hashing
input files and reading/writing one JSON file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from saesim import __version__
from saesim.errors import SaesimError
from saesim.hashes import file_sha256

#: Version of the JSON contract (major.minor).
SCHEMA_VERSION = "1.0"
"""Version of the JSON contract (major.minor): a new major version breaks readers."""
#: The schema file, inside the ``saesim`` package.
SCHEMA_RESOURCE = ("schemas", "compare.schema.json")
#: What ``sha256`` is the hash of, per input kind.
HASH_OF_FILE = "weights file"
HASH_OF_ARRAYS = "W_dec float32 little-endian C-order bytes"

__all__ = [
    "SCHEMA_VERSION",
    "comparison_options",
    "input_record",
    "load_schema",
    "matching_document",
    "provenance",
    "read_matching",
    "stamp",
    "validate",
    "write_matching",
]


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft 2020-12) of comparison documents."""
    from importlib import resources

    return json.loads(resources.files("saesim").joinpath(*SCHEMA_RESOURCE).read_text(encoding="utf-8"))


def validate(doc: Mapping[str, Any], where: str = "document") -> None:
    """Raise :class:`SaesimError` (naming ``where`` and the first failing field) unless ``doc`` fits the schema."""
    import jsonschema

    schema = load_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        at = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise SaesimError(f"{where}: does not follow saesim's compare schema {SCHEMA_VERSION} at {at}: {e.message[:300]}")


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------


def array_sha256(W: Any) -> str:
    """sha256 of a matrix as float32 little-endian C-order bytes (the hash of an in-memory input)."""
    arr = np.ascontiguousarray(np.asarray(W, dtype="<f4"))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def _weights_file(source: str) -> Path | None:
    from saesim.saes.loading import SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS

    p = Path(source)
    for name in (SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS):
        if (p / name).is_file():
            return p / name
    return None


def input_record(weights: Any, path: str | None = None) -> dict[str, Any]:
    """One input of a comparison: path (or id, or None), kind, format, shape and content hash.

    ``weights`` is a :class:`saesim.saes.loading.SAEWeights`. ``kind`` is
    ``"folder"`` (a sae-lens or sparsify folder; the hash is the sha256 of its
    weights file, the same as ``weights_sha256`` in a saesim-trained folder's
    metrics.json), ``"pretrained"`` (a sae-lens id) or ``"object"`` (weights
    given in memory); the last two hash the decoder's float32 bytes.
    """
    from saesim.saes.loading import is_pretrained_id

    source = path if path is not None else (weights.source or None)
    file = _weights_file(source) if source and not is_pretrained_id(source) and weights.format != "object" else None
    if file is not None:
        kind, digest, of = "folder", file_sha256(file), HASH_OF_FILE
    else:
        kind = "pretrained" if source and is_pretrained_id(source) else "object"
        digest, of = array_sha256(weights.W_dec), HASH_OF_ARRAYS
    return {
        "path": None if kind == "object" and not source else str(source),
        "kind": kind,
        "format": weights.format or None,
        "n_latents": int(weights.d_sae),
        "d_in": int(weights.d_in),
        "sha256": digest,
        "hash_of": of,
    }


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"saesim": __version__, "numpy": np.__version__}
    for name in ("scipy", "torch"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def provenance(inputs: Mapping[str, dict[str, Any]], options: Mapping[str, Any],
               seeds: Mapping[str, Any]) -> dict[str, Any]:
    """The ``provenance`` block: versions, ``inputs`` (role -> :func:`input_record`), ``options`` and ``seeds``."""
    return {
        "saesim_version": __version__,
        "versions": _versions(),
        "inputs": {k: dict(v) for k, v in inputs.items()},
        "options": _plain(dict(options)),
        "seeds": _plain(dict(seeds)),
    }


def comparison_options(options: Any = None, *, encoders: bool = True, with_baseline: bool = False) -> dict[str, Any]:
    """Every option of a comparison as provenance records it: a
    :class:`~saesim.similarity.ComparisonOptions` (its defaults when None), whether encoders
    were compared, and ``baseline_draws`` (0 without a random baseline)."""
    from saesim.similarity import ComparisonOptions

    o = ComparisonOptions() if options is None else options
    return {
        "cosine": o.cosine,
        "thresholds": [float(t) for t in o.thresholds],
        "shared_threshold": float(o.shared_threshold),
        "memory_budget_mb": float(o.memory_budget_mb),
        "top_m": int(o.top_m),
        "device": o.device,
        "encoders": bool(encoders),
        "baseline_draws": int(o.baseline_draws) if with_baseline else 0,
    }


def stamp(doc: dict[str, Any], document: str, prov: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``schema_version``, ``document`` and ``provenance`` set (in place; returned)."""
    doc["schema_version"] = SCHEMA_VERSION
    doc["document"] = document
    doc["provenance"] = prov
    return doc


def _plain(x: Any) -> Any:
    """JSON-able copy: tuples as lists, numpy scalars as Python ones, non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------
# The matching document
# --------------------------------------------------------------------------


def matching_document(arrays: Mapping[str, Any], res: Mapping[str, Any], prov: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """The complete one-to-one matching of a compared pair, as a matching document.

    ``arrays`` holds ``matching_rows``/``matching_cols``/``matching_cos`` (what
    :func:`saesim.similarity.per_latent_arrays` returns); ``res`` the pair's
    result (``n_a``, ``n_b``, ``matching_exact``, ``cosine``). Pairs are sorted
    by A's id; ``unmatched_a``/``unmatched_b`` list the ids of each side with no
    partner (the larger side's surplus, and with the sparse assignment any latent
    whose candidates were all taken).
    """
    rows = np.asarray(arrays["matching_rows"], dtype=np.int64)
    cols = np.asarray(arrays["matching_cols"], dtype=np.int64)
    cos = np.asarray(arrays["matching_cos"], dtype=np.float64)
    order = np.argsort(rows, kind="stable")
    rows, cols, cos = rows[order], cols[order], cos[order]
    n_a, n_b = int(res["n_a"]), int(res["n_b"])
    doc = {
        "n_a": n_a,
        "n_b": n_b,
        "cosine": res.get("cosine", "abs"),
        "exact": bool(res.get("matching_exact", True)),
        "pairs": {
            "a": rows.tolist(),
            "b": cols.tolist(),
            "cos": [round(float(c), 7) for c in np.clip(cos, -1.0, 1.0)],  # float32 rounding can pass 1
        },
        "unmatched_a": np.setdiff1d(np.arange(n_a), rows).tolist(),
        "unmatched_b": np.setdiff1d(np.arange(n_b), cols).tolist(),
    }
    if prov is not None:
        stamp(doc, "matching", prov)
    else:
        doc["schema_version"], doc["document"] = SCHEMA_VERSION, "matching"
    return doc


def write_matching(path: str | os.PathLike, doc: Mapping[str, Any]) -> None:
    """Write a matching document atomically (temporary name in the same folder, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(doc, allow_nan=False, separators=(",", ":"), sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        raise SaesimError(f"{path}: cannot write the matching ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def read_matching(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a matching document; its pairs as int/float numpy arrays under ``a``, ``b``, ``cos``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise SaesimError(f"{path}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise SaesimError(f"{path}: not JSON ({e})") from None
    validate(doc, str(path))
    if doc.get("document") != "matching":
        raise SaesimError(f"{path}: a {doc.get('document')!r} document, not a matching")
    p = doc["pairs"]
    doc["a"] = np.asarray(p["a"], dtype=np.int64)
    doc["b"] = np.asarray(p["b"], dtype=np.int64)
    doc["cos"] = np.asarray(p["cos"], dtype=np.float64)
    return doc
