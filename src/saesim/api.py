"""The Python API for notebooks: :func:`compare` and :func:`load_results`.

``saesim.compare(a, b)`` runs exactly what ``saesim compare A B --json`` runs
(:func:`saesim.cli.compare_loaded`, with the CLI's option defaults and checks)
on SAE folders, sae-lens pretrained ids, sae-lens ``SAE`` objects or decoder
matrices, and returns a :class:`Comparison`. ``saesim.load_results("results/")``
reads a workflow's tables and pair JSONs into tidy pandas DataFrames.

Memory: inputs given as paths are loaded as the CLI loads them (decoders in
memory, encoders read from the file chunk by chunk); objects and tensors are
copied once to float32 numpy. ``per_latent()`` holds O(n_a + n_b) rows.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from saesim.errors import SaesimError

__all__ = ["Comparison", "compare", "load_results", "as_sae_weights"]


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor or parameter
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise SaesimError(f"{what}: expected a 2-D matrix, got shape {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise SaesimError(f"{what}: has non-finite values")
    return arr


def as_sae_weights(x: Any, role: str = "a", *, with_encoder: bool = True):
    """``x`` as :class:`saesim.saes.loading.SAEWeights`.

    ``x`` is a path or sae-lens pretrained id (loaded as the CLI loads it), an
    ``SAEWeights``, a sae-lens ``SAE`` (anything with ``W_dec`` and
    optionally ``W_enc`` attributes), a ``(W_dec, W_enc)`` tuple or a decoder
    matrix ``W_dec`` [n_latents, d_in] (numpy or torch; no encoder).
    """
    from saesim.saes.loading import SAEWeights, load_sae_weights

    if isinstance(x, SAEWeights):
        return x
    if isinstance(x, (str, os.PathLike)):
        return load_sae_weights(x, with_encoder=with_encoder, lazy_encoder=True)
    W_enc, fmt = None, "tensor"
    if hasattr(x, "W_dec"):
        cfg = getattr(x, "cfg", None)
        W_dec = _to_numpy(x.W_dec, f"{role}: W_dec")
        if with_encoder and getattr(x, "W_enc", None) is not None:
            W_enc = _to_numpy(x.W_enc, f"{role}: W_enc")
        fmt = "sae_lens_object"
        cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    elif isinstance(x, tuple) and len(x) == 2:
        W_dec = _to_numpy(x[0], f"{role}: W_dec")
        W_enc = _to_numpy(x[1], f"{role}: W_enc") if with_encoder and x[1] is not None else None
        cfg = {}
    else:
        W_dec, cfg = _to_numpy(x, f"{role}: W_dec"), {}
    if W_enc is not None and W_enc.shape != (W_dec.shape[1], W_dec.shape[0]):
        raise SaesimError(f"{role}: W_enc has shape {list(W_enc.shape)}, expected [d_in, d_sae] = "
                          f"{[W_dec.shape[1], W_dec.shape[0]]}")
    if W_dec.shape[0] == 0 or not (np.linalg.norm(W_dec, axis=1) > 0).all():
        raise SaesimError(f"{role}: W_dec has no rows or a zero row (a latent without a direction)")
    return SAEWeights(W_dec=W_dec, W_enc=W_enc, b_dec=None, cfg=cfg, source="", format=fmt)


def _spec(x: Any) -> str | None:
    return os.fspath(x) if isinstance(x, (str, os.PathLike)) else None


# --------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------


class Comparison:
    """One compared pair. Every metric of the JSON is an attribute (``c.mmcs``, ``c.hungarian_mean_cos``,
    ``c.frac_matched_above["0.7"]``, ``c.baseline``, ``c.ratio``, ``c.mmcs_excess`` with a null pair, ...).

    ``to_dict()`` is the pair document of saesim's JSON contract (what
    ``saesim compare A B --json`` prints); ``per_latent()`` a DataFrame with one
    row per latent of each side; ``matching()`` the one-to-one matching.
    """

    def __init__(self, result: dict[str, Any], arrays: dict[str, np.ndarray]):
        self._res = result
        self._arrays = arrays

    def __getattr__(self, name: str) -> Any:
        res = self.__dict__.get("_res", {})
        if name in res:
            return res[name]
        raise AttributeError(f"Comparison has no {name!r}; its fields: {', '.join(sorted(res))}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._res))

    def __repr__(self) -> str:
        return (f"<saesim Comparison {self._res['n_a']} x {self._res['n_b']} latents, d={self._res['d']}: "
                f"mmcs={self._res['mmcs']:.4f}, hungarian_mean_cos={self._res['hungarian_mean_cos']:.4f}>")

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The per-latent arrays (what ``saesim compare --out`` writes to HDF5)."""
        return dict(self._arrays)

    def to_dict(self, *, with_matching: bool = False) -> dict[str, Any]:
        """The pair document (JSON-able, valid against the shipped schema); ``with_matching`` adds ``matching``."""
        from saesim.similarity import contract
        from saesim.cli import _jsonable

        out = _jsonable(self._res)
        if with_matching:
            doc = contract.matching_document(self._arrays, self._res)
            out["matching"] = {k: v for k, v in doc.items() if k not in ("schema_version", "document")}
        return out

    def matching(self):
        """The one-to-one matching as a DataFrame: ``a``, ``b``, ``cos`` (|cos| unless cosine="signed")."""
        import pandas as pd

        rows, cols, cos = (self._arrays[k] for k in ("matching_rows", "matching_cols", "matching_cos"))
        order = np.argsort(rows, kind="stable")
        return pd.DataFrame({"a": rows[order], "b": cols[order], "cos": cos[order]})

    def save_matching(self, path: str | os.PathLike) -> None:
        """Write the matching document (as ``saesim compare --matching FILE``)."""
        from saesim.similarity import contract

        contract.write_matching(path, contract.matching_document(self._arrays, self._res, self._res["provenance"]))

    def per_latent(self):
        """One row per latent of A and of B: ``side``, ``latent``, ``best_partner``/``best_cos`` (the best
        match on the other side), ``matched_partner``/``matched_cos`` (its one-to-one partner; <NA> if
        unmatched) and, with encoders on side A, ``shared``."""
        import pandas as pd

        arr = self._arrays
        frames = []
        for side, n, best, best_cos, mine, theirs in (
            ("a", self._res["n_a"], "best_b_for_a", "best_cos_a", "matching_rows", "matching_cols"),
            ("b", self._res["n_b"], "best_a_for_b", "best_cos_b", "matching_cols", "matching_rows"),
        ):
            partner = np.full(n, -1, dtype=np.int64)
            mcos = np.full(n, np.nan, dtype=np.float64)
            partner[arr[mine]] = arr[theirs]
            mcos[arr[mine]] = arr["matching_cos"]
            df = pd.DataFrame({
                "side": side,
                "latent": np.arange(n, dtype=np.int64),
                "best_partner": np.asarray(arr[best], dtype=np.int64),
                "best_cos": np.asarray(arr[best_cos], dtype=np.float64),
                "matched_partner": pd.array(np.where(partner >= 0, partner, 0), dtype="Int64"),
                "matched_cos": mcos,
            })
            df.loc[partner < 0, "matched_partner"] = pd.NA
            if side == "a" and "shared_mask_a" in arr:
                df["shared"] = np.asarray(arr["shared_mask_a"], dtype=bool)
            frames.append(df)
        return pd.concat(frames, ignore_index=True)


def compare(
    a: Any,
    b: Any,
    *,
    null: Sequence[Any] | None = None,
    cosine: str = "abs",
    thresholds: Sequence[float] | None = None,
    shared_threshold: float | None = None,
    encoders: bool = True,
    baseline_draws: int | None = None,
    seed: int | None = None,
    memory_budget_mb: float | None = None,
    top_m: int | None = None,
    device: str | None = None,
) -> Comparison:
    """Compare two SAEs: every metric of ``saesim compare A B``, its random baseline and, with ``null``, the excess.

    ``a``/``b``: SAE folders (sae-lens or sparsify), sae-lens pretrained ids
    ``release:sae_id``, sae-lens ``SAE`` objects, ``(W_dec, W_enc)`` tuples or
    decoder matrices [n_latents, d_in] (numpy or torch; shared latents need
    encoders on both sides, so a bare decoder skips them). ``null``: a pair
    ``(null_a, null_b)`` of SAEs trained like A and B on null data (any of the
    same kinds). Options left None take the CLI's defaults (``saesim compare
    --help``); they are checked as the CLI checks them.
    """
    from saesim import cli
    from saesim.saes.loading import check_same_d_in

    args = cli.build_parser().parse_args(["compare", "A", "B"])  # the CLI's defaults
    for name, value in (("cosine", cosine), ("thresholds", thresholds), ("shared_threshold", shared_threshold),
                        ("baseline_draws", baseline_draws), ("seed", seed), ("memory_budget_mb", memory_budget_mb),
                        ("top_m", top_m), ("device", device)):
        if value is not None:
            setattr(args, name, list(value) if name == "thresholds" else value)
    cli.comparison_options(args)  # the CLI's one check of the options, naming the flag
    cli._check_device(args.device)
    A = as_sae_weights(a, "a", with_encoder=encoders)
    B = as_sae_weights(b, "b", with_encoder=encoders)
    check_same_d_in(A, B)
    args.a, args.b = _spec(a), _spec(b)
    args.saes = [args.a or "<a>", args.b or "<b>"]
    with_enc = encoders and A.W_enc is not None and B.W_enc is not None
    args.no_encoders = not with_enc
    if null is not None:
        if len(null) != 2:
            raise SaesimError("null is the pair (null_a, null_b) of SAEs trained on null data")
        args.null_a, args.null_b = (_spec(n) if _spec(n) is not None else as_sae_weights(n, f"null_{r}", with_encoder=with_enc)
                                    for n, r in zip(null, "ab"))
        # the CLI's check of the paths among them (an in-memory SAE stands in as ".", which exists)
        cli._check_null_args(argparse.Namespace(**{**vars(args), **{
            r: (v if isinstance(v, str) else ".") for r, v in (("null_a", args.null_a), ("null_b", args.null_b))}}))
    res, arrays = cli.compare_loaded(args, A, B, with_enc)
    return Comparison(res, arrays)


# --------------------------------------------------------------------------
# load_results
# --------------------------------------------------------------------------


class Results(dict):
    """Tables of one workflow run, name -> tidy DataFrame (a dict; ``res.summary`` works as ``res["summary"]``)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no table {name!r} in these results; tables: {', '.join(sorted(self))}") from None

    def __repr__(self) -> str:
        return "Results(" + ", ".join(f"{k}: {len(v)} rows" for k, v in sorted(self.items())) + ")"


def _flat_pair(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A pair JSON as one flat row: scalar metrics, and one column per threshold (``frac_matched_above_0.7``)."""
    from saesim.registry.metrics import DECODER_METRICS

    row: dict[str, Any] = {}
    for name, m in DECODER_METRICS.items():
        v = doc.get(name)
        if m.thresholded:
            for t, x in (v or {}).items():
                row[f"{name}_{t}"] = x
        else:
            row[name] = v
    row.update(n_a=doc.get("n_a"), n_b=doc.get("n_b"), d=doc.get("d"), matching_exact=doc.get("matching_exact"))
    for side in ("a", "b"):
        rec = ((doc.get("provenance") or {}).get("inputs") or {}).get(side) or {}
        row[f"sha256_{side}"] = rec.get("sha256")
    return row


def load_results(results: str | os.PathLike = "results"):
    """The tables of a workflow run as tidy pandas DataFrames (a :class:`Results` dict).

    * ``summary``: ``summary.csv`` (one row per SAE variant of every experiment);
    * one entry per per-experiment table name (``stability``, ``pairs``, ``saes``,
      ``fourier``, ``convergence``, ...): every experiment's ``tables/<name>.csv``
      stacked, with an ``experiment`` column;
    * ``pair_metrics``: every pair JSON (seed pairs, real and null), one row each:
      ``experiment``, ``hook``, ``variant``, ``role``, ``seed_a``, ``seed_b`` and the
      metrics (thresholded ones as ``<metric>_<t>`` columns);
    * ``suites`` (``suite`` column) and ``comparisons`` (``comparison`` column) when present.

    Raises :class:`SaesimError` if ``results`` is not a folder or holds no table.
    """
    import pandas as pd

    from saesim.workflow import layout

    root = Path(results)
    if not root.is_dir():
        raise SaesimError(f"{root}: no such results folder")
    out = Results()
    if (root / "summary.csv").is_file():
        out["summary"] = pd.read_csv(root / "summary.csv")
    per_name: dict[str, list] = {}
    for csv in sorted(root.glob("*/tables/*.csv")):
        df = pd.read_csv(csv)
        df.insert(0, "experiment", csv.parent.parent.name)
        per_name.setdefault(csv.stem, []).append(df)
    for name, frames in per_name.items():
        out[name if name not in out else f"{name}_table"] = pd.concat(frames, ignore_index=True)
    rows = []
    for path in sorted(root.glob("*/pairs/**/*.json")) + sorted(root.glob("*/null/pairs/**/*.json")):
        rel = Path(layout.RESULTS) / path.relative_to(root)
        try:
            ident, _ = layout.parse("pair", rel)
        except ValueError:
            continue
        doc = json.loads(path.read_text())
        rows.append({"experiment": ident.experiment, "hook": ident.hook, "variant": ident.variant, "role": ident.role,
                     "seed_a": ident.seeds[0], "seed_b": ident.seeds[1], **_flat_pair(doc)})
    if rows:
        out["pair_metrics"] = pd.DataFrame(rows)
    for key, pattern, col in (("suites", "suites/*/matrix.csv", "suite"),
                              ("comparisons", "comparisons/*/results.csv", "comparison")):
        frames = []
        for csv in sorted(root.glob(pattern)):
            df = pd.read_csv(csv)
            df.insert(0, col, csv.parent.name)
            frames.append(df)
        if frames:
            out[key] = pd.concat(frames, ignore_index=True)
    if not out:
        raise SaesimError(f"{root}: no saesim tables here (summary.csv, <experiment>/tables/*.csv, pair JSONs)")
    return out
