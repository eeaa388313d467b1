"""Workflow configuration: validation with one clear message, and expansion into jobs.

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import jsonschema
import yaml

from saesim.saes import architectures
from saesim.sources import kinds as source_kinds
from saesim.saes.architectures import SPARSITY_TAGS
from saesim.errors import SaesimError

#: source kinds that are pretrained language models run over a tokenized corpus
LANGUAGE_KINDS = source_kinds.kinds(language_model=True)
#: the largest memory one job may use when the config does not say (max_job_mem_mb): 4 TiB, above any single machine
DEFAULT_MAX_JOB_MEM_MB = 4 * 2**20


def _key_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    either = _either_required(error)
    if either is not None:
        return either
    key = _key_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not allowed; allowed values: {', '.join(map(str, schema['enum']))}"
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"{key}: unknown key(s) {', '.join(extra)}; allowed keys: {', '.join(allowed)}"
    if error.validator == "required":
        return f"{key}: {error.message}"
    if error.validator == "type":
        return f"{key}: {error.instance!r} has the wrong type; expected {schema.get('type')}"
    if error.validator == "propertyNames":
        return f"{key}: name {error.instance!r} must match {schema.get('pattern') or error.message}"
    return f"{key}: {error.message}"


def _either_required(error: jsonschema.ValidationError) -> str | None:
    """``key: needs 'a' or 'b'`` for an anyOf/oneOf of required keys (every alternative named),
    else None."""
    ctx = error.context or []
    if error.validator not in ("anyOf", "oneOf") or not ctx or any(e.validator != "required" for e in ctx):
        return None
    names = [" and ".join(repr(k) for k in e.validator_value) for e in ctx]
    how = "exactly one of them" if error.validator == "oneOf" else "at least one of them"
    return f"{_key_path(error.absolute_path)}: needs {' or '.join(dict.fromkeys(names))} ({how})"


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend into allOf/if-then wrappers to the error that names the real key."""
    while error.context:
        if _either_required(error) is not None:
            return error
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def non_finite_numbers(obj: Any, path: tuple = ()) -> Iterable[tuple[tuple, float]]:
    """``(key path, value)`` of every NaN or infinite number anywhere in a config.

    JSON-schema bounds are false for NaN and allow infinity, so this walk, not the
    schema, refuses them; it covers every key, including ones added later.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from non_finite_numbers(value, (*path, key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from non_finite_numbers(value, (*path, i))


def check_yaml_syntax(path: str | Path) -> None:
    """Refuse a config file that is not YAML with one line giving its file, line and column.

    Snakemake's own message for this names neither the file nor the place.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SaesimError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        json.loads(text)  # Snakemake reads a config file as JSON first, then as YAML
        return
    except ValueError:
        pass
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(getattr(e, "problem", None) or e).split())
        context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and cmark is not None and cmark is not mark:
            what += f" ({' '.join(context.split())} started at line {cmark.line + 1}, column {cmark.column + 1})"
        raise SaesimError(f"{where}: YAML syntax error: {what}") from None


#: the key that makes Snakemake run a YAML config file through YTE (Python expressions in it are executed)
YTE_KEY = "__use_yte__"


def check_no_yte(path: str | Path, *, already_evaluated: bool = False) -> None:
    """Refuse a config file with a top-level ``__use_yte__`` key, in one line.

    Snakemake runs such a file through YTE, which *executes* the Python expressions in it
    (keys and values starting with ``?``) while reading it. saesim configs are plain YAML: a
    config from someone else must not run code. The Snakefile calls this on its default
    config file *before* Snakemake reads it; a file given with ``--configfile`` (or a
    profile) is read by Snakemake before any workflow code runs, so its expressions have
    already run when this refuses it (``already_evaluated``). See docs/security.md.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # check_yaml_syntax and Snakemake report these
    if isinstance(doc, dict) and YTE_KEY in doc:
        when = (" Snakemake had already evaluated it before saesim could look: check what it ran"
                if already_evaluated else " Nothing in it was evaluated.")
        raise SaesimError(
            f"{path}: {YTE_KEY}: saesim configs are plain YAML; YTE templates are code that runs while the file "
            f"is read, so they are refused (remove the key and write the values out; see docs/security.md).{when}"
        )


def check_device_available(device: str) -> None:
    """Refuse ``device: cuda`` where torch sees no CUDA device (before any job runs)."""
    if device != "cuda":
        return
    try:
        import torch
    except ImportError as e:
        raise SaesimError(f"config: device: 'cuda' needs torch, which cannot be imported ({e})") from None
    if not torch.cuda.is_available():
        raise SaesimError(
            "config: device: 'cuda', but torch sees no CUDA device on this machine; use auto or cpu, "
            "or submit the jobs to GPU nodes (--profile profiles/slurm)"
        )


def set_defaults(instance: Any, schema: dict, root: dict) -> None:
    """Fill ``default`` values from the schema into the config, recursively."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = {**root["$defs"][ref], **{k: v for k, v in schema.items() if k != "$ref"}}
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and isinstance(sub, dict) and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance and isinstance(sub, dict):
                set_defaults(instance[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(instance) - set(schema.get("properties", {})):
                set_defaults(instance[key], extra, root)
        for part in schema.get("allOf", []):
            cond = part.get("if")
            if cond is None or jsonschema.Draft202012Validator(cond).is_valid(instance):
                if "then" in part:
                    set_defaults(instance, part["then"], root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            set_defaults(item, schema["items"], root)


def _null_keys_named(config: dict) -> dict:
    """YAML reads an experiment's bare ``null:`` key (the null-model settings) as the key None;
    name it ``"null"`` again."""
    exps = config.get("experiments") if isinstance(config, dict) else None
    if not isinstance(exps, dict) or not any(isinstance(e, dict) and None in e for e in exps.values()):
        return config
    config = dict(config)
    config["experiments"] = {
        name: {("null" if k is None else k): v for k, v in e.items()} if isinstance(e, dict) else e for name, e in exps.items()
    }
    return config


def validate_config(config: dict, schema_path: str | Path, *, source: str = "config") -> dict:
    """Validate ``config`` against the JSON schema and the rules a schema can't say.

    Returns a copy with defaults filled in. Raises :class:`SaesimError` with one
    line naming the key, the value and what is allowed.
    """
    for path, value in non_finite_numbers(config):
        raise SaesimError(f"{source}: {_key_path(path)}: {value} is not a finite number")
    schema = yaml.safe_load(Path(schema_path).read_text())
    config = _null_keys_named(config)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise SaesimError(f"{source}: {_describe(_deepest(errors[0]))}")
    for name, exp in config["experiments"].items():  # what the user wrote, before defaults
        if not source_kinds.of(exp).trains_saes:
            for key in ("sae", "hooks", "store", "model_null"):
                if key in exp:
                    raise SaesimError(
                        f"{source}: experiments.{name}.{key}: an imported-SAE experiment (source kind saes) "
                        f"trains and extracts nothing; remove {key} (its store path goes under source.store)"
                    )
    config = copy.deepcopy(config)
    set_defaults(config, schema, schema)
    for name, exp in config["experiments"].items():
        if not source_kinds.of(exp).trains_saes:
            for key in ("store", "null", "downstream", "coactivation"):  # defaults of trained experiments
                exp.pop(key, None)
            continue
        exp["null"].setdefault("seeds", exp["sae"]["seeds"][:2])  # the schema fills the other null keys
        for i, variant in enumerate(exp["sae"]["variants"]):
            arch = architectures.get(variant["architecture"])
            key = arch.sparsity_key
            where = f"{source}: experiments.{name}.sae.variants[{i}]"
            wrong = [k for k in SPARSITY_TAGS if k in variant and k != key]
            if wrong:
                raise SaesimError(f"{where}: {variant['architecture']} takes {key}, not {', '.join(wrong)}")
            if key == "k":
                for k in variant["k"]:
                    if k >= variant["width"]:
                        raise SaesimError(f"{where}.k: k={k} must be smaller than width={variant['width']}")
                    if arch.integer_k and k != int(k):
                        raise SaesimError(f"{where}.k: {arch.name} needs whole numbers, got {k}")
            for w in variant.get("matryoshka_widths", []):
                if w > variant["width"]:
                    raise SaesimError(f"{where}.matryoshka_widths: {w} exceeds width={variant['width']}")
            known = source_kinds.hooks_of(exp)
            for hook in variant.get("hooks", []):
                if hook not in known:
                    raise SaesimError(f"{where}.hooks: {hook!r} is not a hook of {name}; hooks: {', '.join(known)}")
        if source_kinds.of(exp).hooks is None and not exp.get("hooks"):
            raise SaesimError(f"{source}: experiments.{name}.hooks: a {exp['source']['kind']} experiment needs a list of hook points")
        _check_experiment(name, exp, source)
        fixed = source_kinds.of(exp).hooks
        if fixed is not None and exp.get("hooks", list(fixed)) != list(fixed):
            raise SaesimError(f"{source}: experiments.{name}.hooks: a {exp['source']['kind']} experiment has the single hook {fixed[0]!r}")
        if exp["source"]["kind"] in LANGUAGE_KINDS and "n_rows" in exp["store"]:
            raise SaesimError(
                f"{source}: experiments.{name}.store.n_rows: a {exp['source']['kind']} store holds every token "
                "of its corpus; set source.corpus.n_tokens instead"
            )
        if source_kinds.of(exp).store_rule == "modular":
            src = exp["source"]
            if src["n_heads"] * src["d_head"] != src["d_model"]:
                raise SaesimError(
                    f"{source}: experiments.{name}.source: n_heads * d_head must equal d_model "
                    f"({src['n_heads']} * {src['d_head']} != {src['d_model']})"
                )
        if source_kinds.of(exp).store_rule == "toy":
            from saesim.sources.synthetic import check_model_values, resolve_source

            exp["source"] = resolve_source(exp["source"], f"{source}: experiments.{name}.source")
            model_schema = {**schema["$defs"]["synthetic_model"], "$defs": schema["$defs"]}
            model_errors = sorted(jsonschema.Draft202012Validator(model_schema).iter_errors(exp["source"]["model"]),
                                  key=lambda e: (list(map(str, e.absolute_path)), e.validator))
            if model_errors:
                err = _deepest(model_errors[0])
                path = ".".join(map(str, err.absolute_path))
                raise SaesimError(f"{source}: experiments.{name}.source.model{'.' + path if path else ''} (after the preset): {err.message}")
            check_model_values(exp["source"]["model"], f"{source}: experiments.{name}.source.model")
        for block in SNAPSHOT_BLOCKS:  # raises on a bad variant or hook
            snapshot_target(exp, block, where=f"{source}: experiments.{name}.{block}")
        model_null(exp, where=f"{source}: experiments.{name}.model_null")  # raises on a bad kind, variant or hook
    for name, cmp in config.get("comparisons", {}).items():
        for side in ("a", "b"):
            ref = cmp[side]
            where = f"{source}: comparisons.{name}.{side}"
            exp = config["experiments"].get(ref["experiment"])
            if exp is None:
                raise SaesimError(f"{where}.experiment: {ref['experiment']!r} is not an experiment; experiments: {', '.join(config['experiments'])}")
            if not source_kinds.of(exp).trains_saes:
                raise SaesimError(f"{where}.experiment: {ref['experiment']!r} imports SAEs; comparisons need a trained experiment")
            by_id = {v.id: v for v in expand_variants(exp)}
            if ref["variant"] not in by_id:
                raise SaesimError(f"{where}.variant: {ref['variant']!r} is not a variant of {ref['experiment']}; variants: {', '.join(by_id)}")
            if "seed" in ref and ref["seed"] not in exp["sae"]["seeds"]:
                raise SaesimError(f"{where}.seed: {ref['seed']} is not among the seeds {exp['sae']['seeds']} of {ref['experiment']}")
            variant = by_id[ref["variant"]]
            known = [h for h in source_kinds.hooks_of(exp) if variant.trained_at(h)]
            for hook in ref.get("hooks", []):
                if hook not in known:
                    raise SaesimError(
                        f"{where}.hooks: {hook!r} is not a hook {ref['experiment']} trains {ref['variant']} at; hooks: {', '.join(known)}"
                    )
        check_causal_across_models(config, name, cmp, source)
    for name, suite in config.get("suites", {}).items():
        check_suite(config, name, suite, source)
    for name, exp in config["experiments"].items():
        check_fits_a_machine(name, exp, config.get("max_job_mem_mb", DEFAULT_MAX_JOB_MEM_MB), source)
    return config


def check_causal_across_models(config: dict, name: str, cmp: dict, source: str) -> None:
    """A comparison's ``causal:`` block (causal equivalence across models): both sides
    modular-addition experiments of the same p, each side's variant trained at its hook."""
    c = cmp.get("causal")
    if not c:
        return
    where = f"{source}: comparisons.{name}.causal"
    exps = [cmp[side]["experiment"] for side in ("a", "b")]
    kinds = [config["experiments"][e]["source"]["kind"] for e in exps]
    if kinds != ["modular", "modular"]:
        raise SaesimError(f"{where}: needs two modular-addition experiments; {exps[0]} is {kinds[0]}, {exps[1]} is {kinds[1]}")
    ps = [config["experiments"][e]["source"].get("p", 113) for e in exps]
    if ps[0] != ps[1]:
        raise SaesimError(f"{where}: {exps[0]} has p {ps[0]} and {exps[1]} p {ps[1]}; both models need the same inputs (the same p)")
    for side, e, hook in zip(("a", "b"), exps, c["hooks"]):
        exp = config["experiments"][e]
        variant = {v.id: v for v in expand_variants(exp)}[cmp[side]["variant"]]
        known = [h for h in source_kinds.hooks_of(exp) if variant.trained_at(h)]
        if hook not in known:
            raise SaesimError(f"{where}.hooks: {hook!r} is not a hook {e} trains {variant.id} at; hooks: {', '.join(known)}")


def _check_experiment(name: str, exp: dict, source: str) -> None:
    """Rules of one experiment that would otherwise fail (or mislead) only after jobs ran."""
    where = f"{source}: experiments.{name}"
    expand_variants(exp, where=f"{where}.sae.variants")
    training = exp["sae"]["training"]
    if training["training_samples"] < training["batch_size"]:
        raise SaesimError(
            f"{where}.sae.training.training_samples: {training['training_samples']} is smaller than "
            f"batch_size={training['batch_size']}, so not one training step would run"
        )
    kind = exp["source"]["kind"]
    n_rows = exp.get("store", {}).get("n_rows")
    if source_kinds.get(kind).store_n_rows and n_rows is not None and training["eval_rows"] >= n_rows:
        raise SaesimError(
            f"{where}.sae.training.eval_rows: {training['eval_rows']} held-out rows leave none of the "
            f"store's {n_rows} rows (store.n_rows) for training; at most a fifth of the rows are held out"
        )
    if source_kinds.get(kind).store_n_rows and n_rows is not None and training["eval_rows"] > n_rows // 5:
        # training refuses more than a fifth (saesim.stores.rows.split_rows); say so before the store is built
        raise SaesimError(
            f"{where}.sae.training.eval_rows: {training['eval_rows']} held-out rows are more than a fifth of the "
            f"store's {n_rows} rows (store.n_rows); at most {n_rows // 5} (a fifth of the rows) are held out"
        )
    if source_kinds.get(kind).store_rule == "modular":
        from saesim.sources.modular import store_hook_names

        n_layers = exp["source"]["n_layers"]
        valid = store_hook_names(n_layers)
        for hook in exp["hooks"]:
            if hook not in valid:
                raise SaesimError(
                    f"{where}.hooks: {hook!r} is not a hook of the {n_layers}-layer modular model with one "
                    f"vector per position; hooks: {', '.join(valid)}"
                )


def check_fits_a_machine(name: str, exp: dict, max_job_mem_mb: float, source: str = "config") -> None:
    """Refuse an experiment whose store or training job the resource model
    (:mod:`saesim.workflow.resources`, first attempt) puts above ``max_job_mem_mb``: no job
    larger than the largest machine can ever run, so say so at start-up, in one line."""
    from saesim.workflow import resources as cost

    if not source_kinds.of(exp).trains_saes:
        return
    jobs = []
    if source_kinds.of(exp).store_rule == "toy":
        jobs.append(("its store (make_toy_store)", cost.make_toy_store_mem_mb(exp, 1),
                     f"source.model num_features={exp['source']['model']['num_features']} x "
                     f"hidden_dim={exp['source']['model']['hidden_dim']}"))
    for variant in expand_variants(exp):
        for hook in source_kinds.hooks_of(exp):
            if variant.trained_at(hook):
                jobs.append((f"training {variant.id} at {hook}", cost.train_sae_mem_mb(exp, hook, variant.width, 1),
                             f"sae.variants width={variant.width}"))
    for what, need_mb, keys in jobs:
        if need_mb > max_job_mem_mb:
            raise SaesimError(
                f"{source}: experiments.{name}: {what} needs about {format_bytes(need_mb * 2**20)} of memory by the "
                f"workflow's resource model ({keys}), more than max_job_mem_mb={max_job_mem_mb:.0f} "
                f"({format_bytes(max_job_mem_mb * 2**20)}), the largest machine a job may use"
            )


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it at least 1 (e.g. 22.9 TB)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def check_suite(config: dict, name: str, suite: dict, source: str = "config") -> None:
    """Check one entry of ``suites`` and fill in its defaults (members, hook, seed of a trained experiment).

    Members of an imported experiment (source kind saes) are SAE labels, known
    only once its paths are expanded (:func:`saesim.workflow.suite_runs.expand_imported`),
    and are checked there.
    """
    where = f"{source}: suites.{name}"
    exp = config["experiments"].get(suite["experiment"])
    if exp is None:
        raise SaesimError(f"{where}.experiment: {suite['experiment']!r} is not an experiment; experiments: {', '.join(config['experiments'])}")
    if not source_kinds.of(exp).trains_saes:
        for key in ("hook", "variant", "seed"):
            if key in suite:
                raise SaesimError(f"{where}.{key}: members of an imported-SAE experiment are SAE labels; {key} does not apply")
        return
    by_id = {v.id: v for v in expand_variants(exp)}
    hooks = source_kinds.hooks_of(exp)
    seed = suite.setdefault("seed", exp["sae"]["seeds"][0])
    if seed not in exp["sae"]["seeds"]:
        raise SaesimError(f"{where}.seed: {seed} is not among the seeds {exp['sae']['seeds']} of {suite['experiment']}")
    if suite["axis"] == "hook":
        if "hook" in suite:
            raise SaesimError(f"{where}.hook: along axis hook the members are hooks; give variant instead")
        if "variant" not in suite:
            raise SaesimError(f"{where}.variant: axis hook needs the variant compared across hooks; variants: {', '.join(by_id)}")
        if suite["variant"] not in by_id:
            raise SaesimError(f"{where}.variant: {suite['variant']!r} is not a variant of {suite['experiment']}; variants: {', '.join(by_id)}")
        known = [h for h in hooks if by_id[suite["variant"]].trained_at(h)]
        what = f"a hook {suite['experiment']} trains {suite['variant']} at"
    else:
        if "variant" in suite:
            raise SaesimError(f"{where}.variant: along axis {suite['axis']} the members are variants; give hook instead")
        if "hook" not in suite:
            if len(hooks) > 1:
                raise SaesimError(f"{where}.hook: {suite['experiment']} has several hooks; say which ({', '.join(hooks)})")
            suite["hook"] = hooks[0]
        if suite["hook"] not in hooks:
            raise SaesimError(f"{where}.hook: {suite['hook']!r} is not a hook of {suite['experiment']}; hooks: {', '.join(hooks)}")
        known = [vid for vid, v in by_id.items() if v.trained_at(suite["hook"])]
        what = f"a variant {suite['experiment']} trains at {suite['hook']}"
    members = suite.setdefault("members", list(known))
    for m in members:
        if m not in known:
            raise SaesimError(f"{where}.members: {m!r} is not {what}; choose from {', '.join(known)}")
    if len(members) < 2:
        raise SaesimError(f"{where}.members: a suite needs at least two members, got {members}")


def format_number(x: float) -> str:
    """Compact, filename-safe number: 11 -> '11', 0.003 -> '0.003', 1e-5 -> '1e-05'."""
    return f"{int(x)}" if float(x) == int(x) else f"{x:g}"


@dataclass(frozen=True)
class Variant:
    """One SAE variant: architecture x width x one sparsity value."""

    id: str
    architecture: str
    width: int
    sparsity_key: str
    sparsity: float
    options: tuple[tuple[str, Any], ...]  # per-variant overrides (lr, matryoshka_widths, ...)
    hooks: tuple[str, ...] | None = None  # trained at these hooks only (None: every hook of the experiment)

    def trained_at(self, hook: str) -> bool:
        return self.hooks is None or hook in self.hooks


def expand_variants(exp: dict, *, where: str = "config") -> list[Variant]:
    """Every (architecture, width, sparsity) of an experiment, with a stable id like ``topk-w50-k11``."""
    out = []
    for entry in exp["sae"]["variants"]:
        key = architectures.get(entry["architecture"]).sparsity_key
        options = tuple(
            sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in entry.items() if k not in ("architecture", "width", "hooks", key))
        )
        hooks = tuple(entry["hooks"]) if entry.get("hooks") is not None else None
        for value in entry[key]:
            vid = f"{entry['architecture']}-w{entry['width']}-{SPARSITY_TAGS[key]}{format_number(value)}"
            if entry.get("freeze"):  # a frozen-dictionary twin of a trained variant: its own id
                vid += f"-frozen{entry['freeze'][:3]}"
            out.append(Variant(vid, entry["architecture"], entry["width"], key, float(value), options, hooks))
    ids = [v.id for v in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SaesimError(f"{where}: duplicate SAE variants {dupes}")
    return out


#: the seed modes of sae.seed_mode, in figure order (saesim.analysis.seed_modes)
SEED_MODES = ("both", "init_only", "data_only")

#: the experiment blocks that measure one variant's training snapshots (saesim.analysis.convergence,
#: saesim.analysis.seed_modes)
SNAPSHOT_BLOCKS = ("convergence", "seed_modes")


class SnapshotTarget(NamedTuple):
    """What a ``convergence`` or ``seed_modes`` block measures: one variant at one hook, at
    these fractions of training, under these seed modes (``seed_modes`` only; else empty)."""

    variant: str
    hook: str
    fractions: list[float]
    modes: list[str]


def snapshot_target(exp: dict, block: str, where: str | None = None) -> SnapshotTarget | None:
    """The :class:`SnapshotTarget` of an experiment's ``block`` (one of
    :data:`SNAPSHOT_BLOCKS`), or None (no such block, or ``enabled: false``).

    Defaults: the first variant, the first hook it is trained at, fractions 0.1, 0.25, 0.5 (where
    the schema gives none) and every seed mode; the fractions sorted, with 0 (the initialised
    SAE) and 1.0 (the published SAE) added. ``where`` names the block in errors (default: its key).
    """
    if block not in SNAPSHOT_BLOCKS:
        raise ValueError(f"{block!r} is not one of {', '.join(SNAPSHOT_BLOCKS)}")
    where = where or block
    conf = exp.get(block)
    if not conf or not conf.get("enabled", True):
        return None
    by_id = {v.id: v for v in expand_variants(exp)}
    vid = conf.get("variant", next(iter(by_id)))
    if vid not in by_id:
        raise SaesimError(f"{where}.variant: {vid!r} is not a variant of this experiment; variants: {', '.join(by_id)}")
    trained = [h for h in source_kinds.hooks_of(exp) if by_id[vid].trained_at(h)]
    hook = conf.get("hook", trained[0])
    if hook not in trained:
        raise SaesimError(f"{where}.hook: {hook!r} is not a hook {vid} is trained at; hooks: {', '.join(trained)}")
    modes = [m for m in SEED_MODES if m in conf.get("modes", SEED_MODES)] if block == "seed_modes" else []
    fractions = sorted({float(f) for f in conf.get("fractions", [0.1, 0.25, 0.5])} | {0.0, 1.0})
    return SnapshotTarget(vid, hook, fractions, modes)


def seed_pair(exp: dict, seed: int) -> tuple[int, int]:
    """``(init_seed, data_seed)`` for a seed label, following ``sae.seed_mode``."""
    mode = exp["sae"].get("seed_mode", "both")
    fixed = exp["sae"].get("fixed_seed", 0)
    if mode == "both":
        return seed, seed
    if mode == "init_only":
        return seed, fixed
    return fixed, seed


def expected_l0(source: dict) -> float | None:
    """A toy source's expected L0 (sum of marginal firing probabilities; see saesim.sources.synthetic), else None."""
    if source.get("kind") not in source_kinds.kinds(store_rule="toy"):
        return None
    from saesim.sources.synthetic import expected_l0 as synthetic_expected_l0

    return synthetic_expected_l0(source)



#: the store families whose model saesim can re-initialise (``model_null``): language models
#: loaded through transformers (smollm2, hf) and the modular-addition transformer
MODEL_NULL_KINDS = ("smollm2", "hf", "modular")


class ModelNull(NamedTuple):
    """An experiment's random-weights model null (config ``model_null``), defaults filled in:
    the (hook, variant) pairs trained on the random model, in the order of the experiment's hooks
    and variants; the hooks its stores are extracted at; the seed labels of its SAEs; whether the
    trained embeddings are kept; the re-initialisation seed."""

    hook_variants: list[tuple[str, str]]
    hooks: list[str]
    seeds: list[int]
    keep_embeddings: bool
    seed: int


def model_null(exp: dict, where: str = "model_null") -> ModelNull | None:
    """The :class:`ModelNull` of a validated experiment, or None (no ``model_null`` block, or
    ``enabled: false``). Raises SaesimError naming the key (``where``) for a source kind whose
    model cannot be re-initialised, a variant or hook the experiment does not have, or a choice
    that trains nothing.

    Defaults: every variant, every hook, the first two of ``sae.seeds``, ``keep_embeddings``
    false, seed 0 (language models) or ``source.seed`` (the modular model before training).
    """
    conf = exp.get("model_null")
    if not conf or not conf.get("enabled", True):
        return None
    kind = exp["source"]["kind"]
    if kind not in MODEL_NULL_KINDS:
        raise SaesimError(
            f"{where}: a {kind} experiment has no model saesim can re-initialise; the random-weights model null "
            f"needs source kind {', '.join(MODEL_NULL_KINDS)}"
        )
    by_id = {v.id: v for v in expand_variants(exp)}
    hooks = source_kinds.hooks_of(exp)
    variants = conf.get("variants") or list(by_id)
    for vid in variants:
        if vid not in by_id:
            raise SaesimError(f"{where}.variants: {vid!r} is not a variant of this experiment; variants: {', '.join(by_id)}")
    chosen_hooks = conf.get("hooks") or list(hooks)
    for hook in chosen_hooks:
        if hook not in hooks:
            raise SaesimError(f"{where}.hooks: {hook!r} is not a hook of this experiment; hooks: {', '.join(hooks)}")
    pairs = [(h, vid) for h in hooks if h in chosen_hooks for vid in by_id if vid in variants and by_id[vid].trained_at(h)]
    if not pairs:
        raise SaesimError(f"{where}: none of the variants {variants} is trained at the hooks {chosen_hooks}; nothing to train")
    used_hooks = [h for h in hooks if any(h == ph for ph, _ in pairs)]
    idle = [h for h in conf.get("hooks") or [] if h not in used_hooks]
    if idle:
        raise SaesimError(f"{where}.hooks: none of the variants {variants} is trained at {', '.join(idle)}")
    seeds = list(conf.get("seeds") or exp["sae"]["seeds"][:2])
    default_seed = exp["source"].get("seed", 0) if kind == "modular" else 0
    seed = conf.get("seed", default_seed)
    return ModelNull(pairs, used_hooks, seeds, bool(conf.get("keep_embeddings", False)), int(seed))
