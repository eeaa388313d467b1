"""The ``saesim`` command line.

Each subcommand is a ``register(subparsers)`` function that adds its parser
and sets ``func`` (called with the parsed arguments; returns an exit status).
To add one, write such a function and append it to :data:`SUBCOMMANDS`.
A :class:`~saesim.errors.SaesimError` raised by a subcommand is printed as one
line on stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from saesim.errors import SaesimError


# --------------------------------------------------------------------------
# saesim compare
# --------------------------------------------------------------------------


def register_compare(subparsers) -> None:
    """``saesim compare A B [C ...]``: every similarity metric between SAEs, beside a random baseline.

    The comparison flags default to :class:`~saesim.similarity.ComparisonOptions`'s defaults."""
    from saesim.similarity.options import COSINES, ComparisonOptions

    default = ComparisonOptions()
    p = subparsers.add_parser(
        "compare",
        help="compare two or more SAEs (decoder similarity, one-to-one matching, shared latents)",
        description=(
            "Compare two SAEs, or every pair of several. Each SAE is a sae-lens folder (cfg.json + "
            "sae_weights.safetensors), a sparsify folder (cfg.json + sae.safetensors) or a sae-lens pretrained "
            "id release:sae_id; a sparsify run folder (no cfg.json, one SAE folder per hookpoint such as "
            "layers.6/) stands for all its hookpoints. Exactly two SAE arguments print one pair; more, or a run "
            "folder, print the matrix of every pair (--json: {saes, pairs})."
        ),
    )
    p.add_argument("saes", metavar="SAE", nargs="+", help="SAEs to compare (at least two after expanding run folders)")
    p.add_argument("--cosine", choices=list(COSINES), default=default.cosine,
                   help="score decoder rows by |cos| (default; seed notebooks) or by signed cos (Song et al.'s PW-MCC)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--out", metavar="FILE.h5", help="write per-latent arrays (best matches, matching) to HDF5")
    p.add_argument("--memory-budget-mb", type=float, default=float(default.memory_budget_mb), metavar="N",
                   help=f"working memory for the comparison, in MB (default {default.memory_budget_mb:g})")
    p.add_argument("--device", choices=["cpu", "cuda"], default=default.device,
                   help=f"where to compute (default {default.device})")
    p.add_argument("--baseline-draws", type=int, default=default.baseline_draws, metavar="N",
                   help=f"random SAE pairs for the matching baseline; 0 skips the baseline (default {default.baseline_draws})")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(default.thresholds), metavar="T",
                   help=f"|cos| thresholds for the fractions (default {' '.join(f'{t:g}' for t in default.thresholds)})")
    p.add_argument("--shared-threshold", type=float, default=default.shared_threshold, metavar="T",
                   help=f"|cos| both encoder and decoder matches need for a shared latent (default {default.shared_threshold:g})")
    p.add_argument("--top-m", type=int, default=default.top_m, metavar="M",
                   help=f"candidates per latent for the sparse matching beyond the budget (default {default.top_m})")
    p.add_argument("--no-encoders", action="store_true", help="decoders only: skip shared latents")
    p.add_argument("--seed", type=int, default=default.seed, help=f"seed of the random baseline (default {default.seed})")
    p.add_argument("--null-a", metavar="DIR", help="SAE trained like A on null data (no sparse features): with "
                   "--null-b, also print each metric on the null pair and the excess (m - null) / (1 - null)")
    p.add_argument("--null-b", metavar="DIR", help="SAE trained like B on null data (see --null-a)")
    p.add_argument("--skip-broken", action="store_true",
                   help="leave out a run folder's incomplete SAE subfolders (each named on stderr) instead of stopping")
    p.add_argument("--matching", metavar="FILE.json", help="write the complete one-to-one matching (latent id "
                   "pairs with |cos|, unmatched ids, provenance) as a JSON document of saesim's compare schema")
    p.add_argument("--with-matching", action="store_true",
                   help="with --json: put the complete matching in the printed JSON too (key 'matching')")
    p.set_defaults(func=run_compare)


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SaesimError("--device cuda: no CUDA device is available to torch")


def run_compare(args: argparse.Namespace) -> int:
    from saesim.saes.loading import check_same_d_in, load_sae_weights

    comparison_options(args)  # the options' one check, before anything is loaded
    from saesim.similarity.suites import expand_sae_specs

    specs = expand_sae_specs(args.saes, skip_broken=getattr(args, "skip_broken", False),
                             on_skip=lambda line: print(f"saesim compare: {line}", file=sys.stderr))
    if len(args.saes) != 2 or len(specs) != 2:  # two arguments that stand for one SAE each: one pair
        return run_compare_suite(args, specs)
    args.a, args.b = specs
    if args.out:
        _check_out_path(Path(args.out))
    if getattr(args, "matching", None):
        _check_out_path(Path(args.matching))
    _check_device(args.device)
    _check_null_args(args)

    t0 = time.perf_counter()
    with_enc = not args.no_encoders
    # encoders stay on disk, read chunk by chunk (two 65,536 x 2,304 encoders are 1.1 GiB)
    A = load_sae_weights(args.a, with_encoder=with_enc, lazy_encoder=True)
    B = load_sae_weights(args.b, with_encoder=with_enc, lazy_encoder=True)
    check_same_d_in(A, B)
    t_load = time.perf_counter() - t0
    res, arrays = compare_loaded(args, A, B, with_enc)
    res["seconds"] = {"load": round(t_load, 3), "total": round(time.perf_counter() - t0, 3)}
    write_error = None
    if args.out:
        try:
            write_arrays_h5(Path(args.out), arrays, res)
            res["out"] = str(args.out)
        except SaesimError as e:  # the result is computed: print it, then say why it was not written
            write_error = e
    if args.json:
        print(json.dumps(_jsonable(res), indent=2, allow_nan=False))
    else:
        print(format_table(res))
    if write_error is not None:
        sys.stdout.flush()
        raise write_error
    return 0


def compare_loaded(args: argparse.Namespace, A, B, with_enc: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """One pair of loaded SAEs (:class:`~saesim.saes.loading.SAEWeights`) with the options in ``args``.

    Every metric, the random baseline, the null pair's excess (``args.null_a``/
    ``null_b``: paths or loaded weights, scored exactly like the real pair), the
    shared-initialisation check and the JSON contract fields; returns
    ``(result, per-latent arrays)``. ``saesim compare A B`` and the Python API
    :func:`saesim.compare` both come here: one implementation.
    """
    options = comparison_options(args)
    res, arrays = _score_pair(options, A, B, with_enc, with_baseline=options.baseline_draws > 0, return_arrays=True)
    res["a"] = {"source": A.source, "format": A.format}
    res["b"] = {"source": B.source, "format": B.format}
    res.update(_null_pair_excess(args, options, A, B, res, with_enc))
    res["shared_init"] = _shared_init_check(A.W_dec, B.W_dec, str(getattr(args, "a", None) or A.source),
                                            str(getattr(args, "b", None) or B.source), args.seed)
    add_contract(args, A, B, res, arrays)
    return res, arrays


def _check_null_args(args: argparse.Namespace) -> None:
    """Fail before the comparison, not after it, when the null pair is half given or missing."""
    from saesim.saes.loading import is_pretrained_id

    if (args.null_a is None) != (args.null_b is None):
        raise SaesimError("--null-a and --null-b go together: give both SAEs of the null pair, or neither")
    for flag, path in (("--null-a", args.null_a), ("--null-b", args.null_b)):
        if path is not None and not is_pretrained_id(path) and not Path(path).exists():
            from saesim.errors import missing_path_reason

            raise SaesimError(f"{path} ({flag}): {missing_path_reason(path)}")


def _score_pair(options, X, Y, with_enc: bool, *, with_baseline: bool, return_arrays: bool = False):
    """Score one pair of loaded SAEs with ``options``: the one path for the real and the null pair."""
    from saesim.similarity.suites import compare_pair

    return compare_pair(X.W_dec, Y.W_dec, X.W_enc if with_enc else None, Y.W_enc if with_enc else None,
                        options=options, with_baseline=with_baseline, return_arrays=return_arrays)


def _null_pair_excess(args: argparse.Namespace, options, A, B, res: dict[str, Any], with_enc: bool) -> dict[str, Any]:
    """``null`` (the null pair's sources, or None) and, with --null-a/--null-b, ``<metric>_null``/``_excess``."""
    from saesim.saes.loading import SAEWeights, load_sae_weights
    from saesim.similarity import excess_over_null

    if args.null_a is None:
        return {"null": None}
    nulls = []
    for flag, path, real in (("--null-a", args.null_a, A), ("--null-b", args.null_b, B)):
        N = path if isinstance(path, SAEWeights) else load_sae_weights(path, with_encoder=with_enc, lazy_encoder=True)
        if (N.d_sae, N.d_in) != (real.d_sae, real.d_in):
            raise SaesimError(f"{N.source} ({flag}): {N.d_sae} latents x d_in={N.d_in}, but the SAE it is the null "
                              f"for has {real.d_sae} x d_in={real.d_in}; the null pair must have the real pair's shapes")
        nulls.append(N)
    NA, NB = nulls
    if _same_sae_pair((args.a, args.b), (args.null_a, args.null_b)):
        print("saesim compare: warning: the null pair is the real pair itself, so every excess is 0 by "
              "construction; give SAEs trained on null data (see docs/bad-input.md)", file=sys.stderr)
    # exactly the scoring of the real pair (cosine and every option); only the isotropic baseline is left out
    null_res = _score_pair(options, NA, NB, with_enc, with_baseline=False)
    out = {"null": {"a": {"source": NA.source, "format": NA.format}, "b": {"source": NB.source, "format": NB.format}}}
    out.update(excess_over_null(res, null_res))
    return out


def _same_sae_pair(real: tuple[str, str], null: tuple[str, str]) -> bool:
    """Whether the null pair names the same two SAEs as the real pair (either order, after resolving paths)."""
    def key(spec) -> str:
        if not isinstance(spec, (str, Path)):  # loaded weights (the Python API): compare by source
            return str(getattr(spec, "source", id(spec)))
        p = Path(spec)
        return str(p.resolve()) if p.exists() else spec

    return sorted(map(key, real)) == sorted(map(key, null))


def comparison_options(args: argparse.Namespace):
    """The :class:`~saesim.similarity.ComparisonOptions` of ``saesim compare`` (or of :func:`saesim.compare`)
    from its flags; an option out of range is one clear error naming its flag."""
    from saesim.similarity import ComparisonOptions, InvalidOption

    try:
        return ComparisonOptions(cosine=args.cosine, thresholds=tuple(args.thresholds),
                                 shared_threshold=args.shared_threshold, memory_budget_mb=args.memory_budget_mb,
                                 top_m=args.top_m, device=args.device, baseline_draws=args.baseline_draws,
                                 seed=args.seed)
    except InvalidOption as e:
        raise SaesimError(f"--{e.key.replace('_', '-')} {e.problem}") from None


def provenance_options(args: argparse.Namespace) -> dict[str, Any]:
    """Every option of a comparison, as provenance records it (saesim.similarity.contract)."""
    from saesim.similarity.contract import comparison_options as recorded

    options = comparison_options(args)
    return recorded(options, encoders=not args.no_encoders, with_baseline=options.baseline_draws > 0)


def add_contract(args: argparse.Namespace, A, B, res: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Stamp one pair's result with the JSON contract (schema_version, provenance); write/attach the matching.

    The null pair's inputs are recorded under ``null_a``/``null_b``. With
    ``--matching FILE`` the complete matching goes to FILE (and its name under
    ``matching_file``); with ``--with-matching`` into ``res["matching"]``.
    """
    from saesim.similarity import contract

    inputs = {"a": contract.input_record(A, getattr(args, "a", None)),
              "b": contract.input_record(B, getattr(args, "b", None))}
    for role in ("null_a", "null_b"):
        spec = getattr(args, role, None)
        if spec is not None:
            from saesim.saes.loading import SAEWeights, load_sae_weights

            W = spec if isinstance(spec, SAEWeights) else load_sae_weights(spec, with_encoder=False)
            inputs[role] = contract.input_record(W, None if isinstance(spec, SAEWeights) else spec)
    seeds = {"baseline": int(args.seed) if args.baseline_draws > 0 else None}
    prov = contract.provenance(inputs, provenance_options(args), seeds)
    contract.stamp(res, "pair", prov)
    if getattr(args, "matching", None) or getattr(args, "with_matching", False):
        doc = contract.matching_document(arrays, res, prov)
        if getattr(args, "matching", None):
            contract.write_matching(args.matching, doc)
            res["matching_file"] = str(args.matching)
        if getattr(args, "with_matching", False):
            res["matching"] = {k: v for k, v in doc.items() if k not in ("schema_version", "document", "provenance")}


def _jsonable(x: Any) -> Any:
    """``x`` with non-finite floats as None (JSON has no NaN) and numpy scalars as Python ones."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt(v: Any, width: int = 9) -> str:
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:.4f}".rjust(width) if abs(v) < 1000 else f"{v:.3g}".rjust(width)
    return str(v).rjust(width)


def format_table(res: dict[str, Any]) -> str:
    """A readable table of :func:`saesim.similarity.compare_decoders` output: value, random baseline, ratio."""
    base = res.get("baseline") or {}
    lines = []
    for side in ("a", "b"):
        info = res.get(side, {})
        n = res[f"n_{side}"]
        lines.append(f"{side.upper()}: {info.get('source', '?')} ({info.get('format', '?')}, {n} latents x d={res['d']})")
    lines.append("")
    null = res.get("null") is not None  # with a null pair: two more columns
    width = 61 + 18 * null
    lines.append(f"{'metric':<34}{'value':>9}{'random':>9}{'ratio':>9}" + (f"{'null':>9}{'excess':>9}" if null else ""))
    lines.append("-" * width)

    def row(label, value, b, metric, k=None):
        # a ratio to a baseline of (nearly) zero says nothing
        ratio = value / b if (value is not None and b is not None and b >= 1e-3) else None
        line = f"{label:<34}{_fmt(value)}{_fmt(b)}{_fmt(ratio)}"
        if null:
            n, e = res.get(f"{metric}_null"), res.get(f"{metric}_excess")
            n, e = (n or {}).get(k) if k else n, (e or {}).get(k) if k else e
            line += f"{_fmt(n)}{_fmt(e)}"
        lines.append(line)

    from saesim.registry.metrics import DECODER_METRICS

    for m in DECODER_METRICS.values():  # one row each, one per threshold for fractions
        if m.thresholded:
            for k, v in res[m.name].items():
                row(m.label.format_map({**res, "t": k}), v, (base.get(m.name) or {}).get(k), m.name, k)
        else:
            row(m.label.format_map(res), res[m.name], base.get(m.name), m.name)
    lines.append("-" * width)
    how = "exact Hungarian" if res["matching_exact"] else f"top-{res['top_m']} sparse assignment"
    lines.append(f"one-to-one matching: {how}; fractions are over the smaller SAE's {min(res['n_a'], res['n_b'])} latents")
    if base:
        drawn = (base.get("draw_n_a", res["n_a"]), base.get("draw_n_b", res["n_b"]))
        how = "" if drawn == (res["n_a"], res["n_b"]) else f" (matching drawn at {drawn[0]} x {drawn[1]} and transferred)"
        lines.append(f"random: Gaussian SAEs of the same shapes, {base['draws']} draw(s){how}, seed {base['seed']}; "
                     "mean max |cos| in closed form")
    if null:
        lines.append(f"null: SAEs trained on null data, {res['null']['a']['source']} vs {res['null']['b']['source']}; "
                     "excess = (value - null) / (1 - null)")
    elif "null" in res:
        lines.append("chance level: isotropic random SAEs only; --null-a/--null-b (SAEs trained on null data) "
                     "add the trained null and the excess over it")
    if "seconds" in res:
        lines.append(f"time: {res['seconds']['total']:.1f} s")
    if res.get("out"):
        lines.append(f"per-latent arrays: {res['out']}")
    if res.get("cosine") == "signed":
        lines.append("cosine: signed (rows scored by cos, not |cos|: a sign-flipped copy does not match)")
        return "\n".join(lines).replace("|cos|", "cos")
    return "\n".join(lines)


def _shared_init_check(dec_a, dec_b, a: str, b: str, seed: int) -> dict[str, Any]:
    """saesim.similarity.shared_init.shared_init_test of two decoders; one warning line on stderr when flagged."""
    from saesim.similarity.shared_init import shared_init_test, shared_init_warning

    res = shared_init_test(dec_a, dec_b, seed=seed)
    line = shared_init_warning(res, a, b)
    if line:
        print(line, file=sys.stderr, flush=True)
    return res


def run_compare_suite(args: argparse.Namespace, specs: list[str]) -> int:
    """``saesim compare`` with more than two SAEs (or a run folder): every pair i < j, as matrices or JSON."""
    from saesim.saes.loading import load_sae_weights
    from saesim.similarity.suites import compare_suite, format_suite_table

    if len(specs) < 2:
        raise SaesimError(f"{specs[0]}: compare needs at least two SAEs, and this names one")
    if args.out:
        raise SaesimError("--out writes the per-latent arrays of one pair: give exactly two SAEs")
    if getattr(args, "null_a", None) is not None or getattr(args, "null_b", None) is not None:
        raise SaesimError(f"--null-a/--null-b are the null pair of one comparison: give exactly two SAEs "
                          f"(the {len(args.saes)} argument(s) stand for {len(specs)} SAEs after expanding run folders)")
    _check_device(args.device)
    t0 = time.perf_counter()
    with_enc = not args.no_encoders
    saes = [load_sae_weights(s, with_encoder=with_enc) for s in specs]
    t_load = time.perf_counter() - t0
    options = comparison_options(args)
    res = compare_suite(saes, paths=specs, options=options, with_encoders=with_enc,
                        with_baseline=options.baseline_draws > 0, timings=True)
    for pair in res["pairs"]:
        pair.setdefault("null", None)  # as the two-SAE JSON without --null-a/--null-b: isotropic baseline only
        i, j = pair["a"], pair["b"]
        pair["shared_init"] = _shared_init_check(saes[i].W_dec, saes[j].W_dec, specs[i], specs[j], args.seed)
    if getattr(args, "matching", None) or getattr(args, "with_matching", False):
        raise SaesimError("--matching/--with-matching write the matching of one pair: give exactly two SAEs")
    add_suite_contract(args, specs, saes, res)
    res["seconds"] = {"load": round(t_load, 3), "total": round(time.perf_counter() - t0, 3)}
    if args.json:
        print(json.dumps(_jsonable(res), indent=2, allow_nan=False))
    else:
        print(format_suite_table(res))
    return 0


def add_suite_contract(args: argparse.Namespace, specs: list[str], saes: list[Any], res: dict[str, Any]) -> None:
    """Stamp a suite result (every pair of several SAEs) with the JSON contract; inputs keyed by index."""
    from saesim.similarity import contract

    inputs = {str(i): contract.input_record(w, spec) for i, (spec, w) in enumerate(zip(specs, saes))}
    seeds = {"baseline": int(args.seed) if args.baseline_draws > 0 else None}
    options = provenance_options(args)
    contract.stamp(res, "suite", contract.provenance(inputs, options, seeds))
    for pair in res["pairs"]:  # each pair a pair document of its own, as `saesim compare A B --json` prints it
        i, j = str(pair["a"]), str(pair["b"])
        contract.stamp(pair, "pair", contract.provenance({"a": inputs[i], "b": inputs[j]}, options, seeds))


def _check_out_path(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise SaesimError(f"{path}: cannot write here (no folder {parent})")
    if not os.access(parent, os.W_OK):
        raise SaesimError(f"{path}: cannot write here (folder {parent} is not writable)")


def write_arrays_h5(path: Path, arrays: dict[str, Any], summary: dict[str, Any]) -> None:
    """Write per-latent arrays to HDF5 atomically: a temporary file in the same folder, then rename."""
    import h5py

    parent = path.resolve().parent
    tmp = None
    try:
        # inside the try: a folder that passes the access check can still refuse the file (NFS root squash,
        # ACLs, SELinux, /proc), and that must be one line, not a traceback after the whole comparison
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        with h5py.File(tmp, "w") as f:
            for name, arr in arrays.items():
                f.create_dataset(name, data=arr, compression="gzip", compression_opts=1)
            f.attrs["summary_json"] = json.dumps(_jsonable(summary), allow_nan=False)
            f.attrs["source_a"] = summary.get("a", {}).get("source", "")
            f.attrs["source_b"] = summary.get("b", {}).get("source", "")
        os.replace(tmp, path)
    except OSError as e:
        raise SaesimError(f"{path}: cannot write ({e.strerror or e}); the result above was not saved") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------
# saesim verify
# --------------------------------------------------------------------------


def register_verify(subparsers) -> None:
    """``saesim verify PATH...``: check stores and SAE folders against their recorded hashes."""
    p = subparsers.add_parser(
        "verify",
        help="check activation stores and SAE folders against the hashes recorded when they were written",
        description=(
            "Check each PATH: an activation store (.h5) is read in full and its content hash recomputed "
            "and compared with its content_hash attribute; an SAE folder trained by saesim is loaded and "
            "the sha256 of its weights compared with weights_sha256 in its metrics.json. Prints one line "
            "per path; exit status 1 if any check fails."
        ),
    )
    p.add_argument("paths", metavar="PATH", nargs="+", help="activation store file or SAE folder")
    p.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from saesim.stores.activation_store import verify_store
    from saesim.saes.loading import verify_sae_folder

    failed = 0
    for path in args.paths:
        t0 = time.perf_counter()
        try:
            if Path(path).is_dir():
                kind, digest = "SAE weights sha256", verify_sae_folder(path)
            else:
                kind, digest = "store content hash", verify_store(path)
        except SaesimError as e:
            failed += 1
            print(f"saesim verify: error: {' '.join(str(e).split())}", file=sys.stderr)
            continue
        print(f"ok {path}: {kind} {digest[:16]}... matches ({time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

#: Functions adding one subcommand each; append yours here.
SUBCOMMANDS: list[Callable[[Any], None]] = [register_compare]
SUBCOMMANDS.append(register_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saesim", description="Do sparse autoencoders learn the same features?")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``saesim``; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except SaesimError as e:
        print(f"saesim {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"saesim {args.command}: error: out of memory (try a smaller --memory-budget-mb)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
