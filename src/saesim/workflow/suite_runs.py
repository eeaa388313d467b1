"""Suites in the workflow: imported SAEs (source kind ``saes``) and cross-variant matrices (config ``suites``).

* :func:`expand_imported`: the SAEs an imported experiment lists (folders,
  sparsify run folders, glob patterns, sae-lens registry ids), each with a
  unique label; run when the workflow is parsed, so a missing path or an
  unreachable hub stops it before any job;
* :func:`describe_imported_sae`: what a suite says about one imported SAE (hook,
  layer, width, architecture, k, L0, run/seed) and, with a store, its
  explained variance, L0 and dead fraction measured there;
* :func:`trained_info`: the same for an SAE this workflow trained;
* :func:`suite_cell`: one cell of a suite, a pair of members, through
  :func:`saesim.similarity.suites.compare_suite` (what ``saesim compare A B`` computes);
* :func:`matrix_table`: every cell of a suite as rows ``row -> col``.

Parse-time functions import only numpy and the standard library.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from saesim.errors import SaesimError
from saesim.workflow.layout import natural_key

if TYPE_CHECKING:
    from saesim.similarity import ComparisonOptions

#: a member label: file- and wildcard-safe, and never "__" (cell files are <a>__<b>.json)
LABEL_PATTERN = r"[A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+)*"
"""Allowed imported-SAE labels (they become file names)."""
AXES = ("width", "k", "architecture", "hook")
"""What may vary along a suite's matrix."""
#: sizes assumed for resources where an SAE's shape is unknown before it is loaded (registry ids)
UNKNOWN_SAE_SHAPE = (65536, 2304)

__all__ = [
    "AXES",
    "LABEL_PATTERN",
    "axis_value",
    "check_hub",
    "expand_imported",
    "describe_imported_sae",
    "local_shape",
    "matrix_table",
    "suite_cell",
    "trained_info",
]


def _sanitize(text: str) -> str:
    """``text`` as a label: runs of other characters (and of underscores) become one '-'."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    s = re.sub(r"_{2,}", "-", s)
    return s.strip("-_.") or "sae"


def _is_sae(p: Path) -> bool:
    from saesim.saes.loading import CFG_FILE, SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS

    if p.is_file():
        return p.name in (SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS) and (p.parent / CFG_FILE).is_file()
    return (p / CFG_FILE).is_file() and ((p / SAE_LENS_WEIGHTS).is_file() or (p / SPARSIFY_WEIGHTS).is_file())


def _sae_folder(p: Path) -> Path:
    return p.parent if p.is_file() else p


def _weight_files(p: Path) -> list[str]:
    from saesim.saes.loading import CFG_FILE, SAE_LENS_WEIGHTS, SPARSIFY_WEIGHTS

    folder = _sae_folder(p)
    weights = folder / SAE_LENS_WEIGHTS if (folder / SAE_LENS_WEIGHTS).is_file() else folder / SPARSIFY_WEIGHTS
    return [str(folder / CFG_FILE), str(weights)]


def check_hub(spec: str, where: str) -> None:
    """Stop (one line naming the id) when a sae-lens registry id cannot reach the Hugging Face hub."""
    from saesim.sources.hub import HUB_HOST, hub_offline, hub_reachable

    if not hub_reachable():
        raise SaesimError(
            f"{where}: {spec} is a sae-lens registry id, which needs the Hugging Face hub "
            f"({'HF_HUB_OFFLINE is set' if hub_offline() else f'{HUB_HOST} is unreachable'})"
        )


def expand_imported(entries: Sequence[dict[str, Any]], where: str, *, check_registry: bool = True) -> list[dict[str, Any]]:
    """Every SAE the ``saes`` list of an imported experiment stands for, in order.

    Each entry ``{path, label?, hook?, seed?}`` gives one or more SAEs: a
    folder or weights file gives one; a sparsify run folder (no ``cfg.json``,
    one SAE folder per hookpoint) one per hookpoint in natural order; a glob
    pattern each match (sorted naturally; matches that are run folders
    expand too); a registry id ``release:sae_id`` one, after checking that
    the hub is reachable (``check_registry``). Returns dicts with ``label``,
    ``spec`` (what :func:`saesim.saes.loading.load_sae_weights` reads),
    ``files`` (local files a job depends on), ``registry``, and ``hook``,
    ``seed``, ``run`` where known.

    Labels: the entry's ``label`` for a single SAE, ``<label>-<name>`` for
    each of several (``name`` its path below the run folder or the glob's
    fixed part, '/' as '-'); without ``label`` the name alone, or for a run
    folder ``<run folder>-<hookpoint>``. Raises :class:`SaesimError` (one line
    naming ``where[i].path`` or ``.label``) for a path that is missing, not an
    SAE, a glob that matches nothing, or labels that repeat.
    """
    from saesim.saes.loading import is_pretrained_id
    from saesim.similarity.suites import expand_sae_specs

    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        w = f"{where}[{i}]"
        spec = str(entry["path"])
        given = entry.get("label")
        extra = {k: entry[k] for k in ("hook", "seed") if entry.get(k) is not None}
        if is_pretrained_id(spec):
            if check_registry:
                check_hub(spec, f"{w}.path")
            release, _, sae_id = spec.partition(":")
            out.append({"label": given or _sanitize(sae_id), "spec": spec, "files": [], "registry": True,
                        "run": given or release, **extra})
            continue
        if glob.has_magic(spec):
            matches = sorted(glob.glob(spec), key=natural_key)
            if not matches:
                raise SaesimError(f"{w}.path: {spec!r} matches nothing")
            root = Path(os.path.dirname(re.split(r"[*?\[]", spec, maxsplit=1)[0]) or ".")
        else:
            if not os.path.exists(spec):
                from saesim.errors import missing_path_reason

                raise SaesimError(f"{w}.path: {spec}: {missing_path_reason(spec)}")
            matches, root = [spec], None
        found: list[tuple[Path, str, str]] = []  # (SAE path, its name, its run)
        for m in matches:
            subs = expand_sae_specs([m], skip_broken=bool(entry.get("skip_broken", False)),
                                    on_skip=lambda line: print(f"{w}.path: {line}", file=sys.stderr, flush=True))
            if subs != [m]:  # a run folder: one SAE per hookpoint
                if root is None:
                    found += [(Path(q), Path(q).name, Path(m).name) for q in subs]
                else:
                    rel = Path(m).relative_to(root)
                    found += [(Path(q), f"{rel}-{Path(q).name}", rel.parts[0]) for q in subs]
            elif _is_sae(Path(m)):
                folder = _sae_folder(Path(m))
                if root is None:
                    found.append((Path(m), folder.name, folder.resolve().parent.name))
                else:
                    rel = folder.relative_to(root)
                    found.append((Path(m), str(rel), rel.parts[0]))
            elif root is None:
                raise SaesimError(
                    f"{w}.path: {spec} is not an SAE (a folder with cfg.json and sae_weights.safetensors or "
                    "sae.safetensors) nor a run folder of them"
                )
        if not found:
            raise SaesimError(f"{w}.path: {spec!r} matches no SAE folder")
        for q, name, run in found:
            name = _sanitize(name.replace(os.sep, "-"))
            if given:
                label = given if len(found) == 1 else f"{given}-{name}"
            else:  # a run folder's hookpoints are named after the run
                label = _sanitize(f"{run}-{name}") if root is None and q != Path(spec) else name
            out.append({"label": label, "spec": str(q), "files": _weight_files(q), "registry": False,
                        "run": given or run, **extra})
    seen: dict[str, int] = {}
    for item in out:
        if not re.fullmatch(LABEL_PATTERN, item["label"]):
            raise SaesimError(f"{where}: label {item['label']!r} (from {item['spec']}) must match {LABEL_PATTERN}; set label:")
        if item["label"] in seen:
            raise SaesimError(
                f"{where}: two SAEs get the label {item['label']!r} ({out[seen[item['label']]]['spec']} and "
                f"{item['spec']}); give them labels"
            )
        seen[item["label"]] = len(seen)
    return out


def local_shape(spec: str) -> tuple[int, int] | None:
    """(latents, d) of a local SAE from its ``cfg.json`` (no weights read), or None when it does not say."""
    import json

    from saesim.saes.loading import CFG_FILE

    try:
        cfg = json.loads((_sae_folder(Path(spec)) / CFG_FILE).read_text())
    except (OSError, ValueError):
        return None
    d = cfg.get("d_in")
    n = cfg.get("d_sae") or cfg.get("num_latents") or ((cfg.get("expansion_factor") or 0) * (d or 0))
    return (int(n), int(d)) if n and d else None


def check_same_d(specs: dict[str, str], where: str) -> None:
    """Members of one suite are compared pairwise, so they must share d: one line naming two
    labels that differ (from their ``cfg.json``; registry ids, which say nothing locally, pass)."""
    first: tuple[str, int] | None = None
    for label, spec in specs.items():
        shape = local_shape(spec)
        if shape is None:
            continue
        if first is None:
            first = (label, shape[1])
        elif shape[1] != first[1]:
            raise SaesimError(
                f"{where}.members: {label} ({spec}) has d_in={shape[1]} but {first[0]} has d_in={first[1]}; "
                "the SAEs of a suite are compared pairwise and must read the same activations"
            )


def _layer(hook: Any) -> int | None:
    m = re.search(r"(\d+)", str(hook)) if hook is not None else None
    return int(m.group(1)) if m else None


def _sae_for_eval(spec: str, fmt: str):
    """An object with ``encode`` (dense codes), ``decode``, ``cfg.d_sae`` and ``device``, for :func:`saesim.saes.evaluation.evaluate_sae`."""
    if fmt == "sparsify":
        import torch
        from sparsify import Sae

        class _Dense:
            def __init__(self, sae):
                self.sae = sae
                self.device = sae.device
                self.cfg = type("Cfg", (), {"d_sae": sae.num_latents})()

            def encode(self, x):
                out = self.sae.encode(x)
                z = torch.zeros(x.shape[0], self.sae.num_latents, dtype=x.dtype, device=x.device)
                return z.scatter_(1, out.top_indices, out.top_acts.to(x.dtype))

            def decode(self, z):
                return z @ self.sae.W_dec + self.sae.b_dec

        return _Dense(Sae.load_from_disk(str(_sae_folder(Path(spec))), device="cpu"))
    from saesim.saes.loading import is_pretrained_id

    from sae_lens import SAE

    if is_pretrained_id(spec):
        loaded = SAE.from_pretrained(*spec.split(":", 1), device="cpu")
        return loaded[0] if isinstance(loaded, tuple) else loaded
    return SAE.load_from_disk(str(_sae_folder(Path(spec))), device="cpu")


def measure_on_store(spec: str, fmt: str, d: int, store_path: str, eval_rows: int,
                     exclude_positions: Sequence[int] = (0,)) -> dict[str, Any]:
    """Explained variance, MSE, L0 and dead fraction of one SAE on the first ``eval_rows`` eligible rows of a store."""
    import numpy as np
    import torch

    from saesim.stores.activation_store import open_store
    from saesim.saes.evaluation import evaluate_sae

    torch.set_grad_enabled(False)
    with open_store(store_path) as store:
        if store.d != d:
            raise SaesimError(f"{store_path}: d={store.d} but {spec} has d_in={d}; the store must hold the SAE's inputs")
        eligible = np.ones(store.n_rows, dtype=bool)
        if exclude_positions and store.has_tokens:
            eligible &= ~np.isin(store.row_array("positions"), list(exclude_positions))
        idx = np.flatnonzero(eligible)[:eval_rows]
        mask = np.zeros(store.n_rows, dtype=bool)
        mask[idx] = True
        out = evaluate_sae(_sae_for_eval(spec, fmt), store, mask)
        out["store"] = str(store_path)
        out["store_content_hash"] = store.content_hash
    return out


def describe_imported_sae(item: dict[str, Any], *, store: str | None = None, eval_rows: int = 4096,
                    exclude_positions: Sequence[int] = (0,)) -> dict[str, Any]:
    """What a suite says about one imported SAE: :func:`saesim.similarity.suites.describe_sae` plus label, run, seed,
    ``hookpoint`` (config ``hook`` wins), ``layer`` (its first number), ``width``, and ``l0``:
    measured on ``store`` when one is given (with EV, MSE, dead fraction; ``l0_source: store``),
    else TopK's k from the config (``l0_source: cfg k``)."""
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity.suites import describe_sae

    w = load_sae_weights(item["spec"], with_encoder=False)
    ident = describe_sae(w, item["spec"])
    ident["label"] = item["label"]
    ident["run"] = item.get("run")
    if item.get("seed") is not None:
        ident["seed"] = int(item["seed"])
    if item.get("hook"):
        ident["hookpoint"] = item["hook"]
    ident["layer"] = _layer(ident.get("hookpoint"))
    ident["width"] = ident["n"]
    if ident.get("k") is not None:
        ident["l0"], ident["l0_source"] = float(ident["k"]), "cfg k"
    if store:
        m = measure_on_store(item["spec"], w.format, w.d_in, store, eval_rows, exclude_positions)
        ident.update({k: m[k] for k in ("explained_variance", "mse", "dead_fraction", "eval_rows", "store",
                                        "store_content_hash")})
        ident["l0"], ident["l0_source"] = float(m["l0"]), "store"
    return ident


def trained_info(sae_dir: str, *, label: str, hook: str, variant: str, seed: int) -> dict[str, Any]:
    """What a suite says about an SAE this workflow trained (its folder's ``metrics.json``)."""
    import json

    m = json.loads((Path(sae_dir) / "metrics.json").read_text())
    info = {
        "label": label,
        "hookpoint": hook,
        "layer": _layer(hook),
        "variant": variant,
        "seed": int(seed),
        "width": int(m["width"]),
        "architecture": m["architecture"],
        m["sparsity_key"]: m["sparsity"],
        "l0": float(m["l0"]),
        "l0_source": "store",
    }
    for k in ("explained_variance", "mse", "dead_fraction"):
        info[k] = m.get(k)
    return info


def suite_cell(spec_a: str, spec_b: str, info_a: dict[str, Any], info_b: dict[str, Any], *, suite: str, axis: str,
               options: ComparisonOptions) -> dict[str, Any]:
    """One cell of a suite: :func:`saesim.similarity.suites.compare_suite` of two SAEs with ``options``.

    ``pair`` holds every key of ``saesim compare A B --json`` (same values for
    the same options: baseline ``seed``, ``baseline_draws``, thresholds,
    encoders on) plus both directions of the best-match fractions and, for
    different widths, ``splitting``; ``saes`` describes A and B (their
    :func:`saesim.similarity.suites.describe_sae` updated with ``info_a`` / ``info_b``).
    """
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity.suites import compare_suite

    A = load_sae_weights(spec_a)
    B = load_sae_weights(spec_b)
    res = compare_suite([A, B], paths=[spec_a, spec_b], options=options)
    pair = dict(res["pairs"][0])
    pair.pop("a")
    pair.pop("b")
    from saesim.similarity.shared_init import shared_init_test

    pair["shared_init"] = shared_init_test(A.W_dec, B.W_dec, seed=options.seed)  # as saesim compare's JSON
    saes = [{**res["saes"][0], **info_a}, {**res["saes"][1], **info_b}]
    return {"suite": suite, "axis": axis, "a": info_a["label"], "b": info_b["label"], "cosine": options.cosine,
            "saes": saes, "pair": pair}


def axis_value(info: dict[str, Any], axis: str) -> Any:
    """A member's value along a suite's axis: width, k (TopK's k; else the measured L0), architecture or hook."""
    if axis == "width":
        return info.get("width", info.get("n"))
    if axis == "k":
        return info.get("k", info.get("l0"))
    if axis == "architecture":
        return info.get("architecture")
    return info.get("hookpoint")


def matrix_table(cells: Sequence[dict[str, Any]], members: Sequence[str]):
    """Every cell of a suite as two rows, ``row -> col`` and ``col -> row``, in member order.

    Columns: the two members (label, axis value, latents, L0), the mean max
    cos from the row's latents to the column (``mmcs``), the symmetric one,
    the one-to-one mean cos, shared latents, for each threshold t the
    fraction of the row's latents whose best match in the column reaches t
    (``frac_best_<t>``), each with ``_baseline`` (isotropic random decoders
    of the same shapes); where the row is the narrower SAE of a pair of
    different widths, feature splitting (``split_<t>_mean_partners``,
    ``_frac_split``, ``_frac_wide_unmatched`` and baselines).
    """
    import pandas as pd

    order = {m: i for i, m in enumerate(members)}
    rows = []
    for cell in cells:
        pair, base = cell["pair"], cell["pair"].get("baseline") or {}
        for r, c, d in ((0, 1, "a_to_b"), (1, 0, "b_to_a")):
            ir, ic = cell["saes"][r], cell["saes"][c]
            row = {
                "suite": cell["suite"], "axis": cell["axis"], "cosine": cell["cosine"],
                "row": ir["label"], "col": ic["label"],
                "row_value": axis_value(ir, cell["axis"]), "col_value": axis_value(ic, cell["axis"]),
                "n_row": ir["n"], "n_col": ic["n"], "d": pair["d"],
                "hook_row": ir.get("hookpoint"), "hook_col": ic.get("hookpoint"),
                "l0_row": ir.get("l0"), "l0_col": ic.get("l0"),
                "mmcs": pair[f"mmcs_{d}"], "mmcs_baseline": base.get(f"mmcs_{d}"),
                "mmcs_sym": pair["mmcs"], "mmcs_sym_baseline": base.get("mmcs"),
                "hungarian_mean_cos": pair["hungarian_mean_cos"],
                "hungarian_mean_cos_baseline": base.get("hungarian_mean_cos"),
                "shared_latents_frac": pair.get("shared_latents_frac"),
                "shared_latents_frac_baseline": base.get("shared_latents_frac"),
            }
            for t, v in pair[f"frac_best_match_above_{d}"].items():
                row[f"frac_best_{t}"] = v
                row[f"frac_best_{t}_baseline"] = (base.get(f"frac_best_match_above_{d}") or {}).get(t)
            sp = pair.get("splitting")
            if sp is not None and sp["narrow"] == r:
                for t, s in sp["by_threshold"].items():
                    row[f"split_{t}_mean_partners"] = s["mean_partners"]
                    row[f"split_{t}_frac_split"] = s["frac_narrow_split"]
                    row[f"split_{t}_frac_wide_unmatched"] = s["frac_wide_unmatched"]
                    row[f"split_{t}_mean_partners_baseline"] = s["baseline"]["mean_partners"]
                    row[f"split_{t}_frac_wide_unmatched_baseline"] = s["baseline"]["frac_wide_unmatched"]
            rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table = table.assign(_r=table["row"].map(order), _c=table["col"].map(order))
        table = table.sort_values(["_r", "_c"], kind="stable").drop(columns=["_r", "_c"]).reset_index(drop=True)
    return table
