"""Workflow configuration: validation with one clear message, and expansion into jobs.

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from .errors import SaesimError

SPARSITY_KEYS = {
    "standard": "l1_coefficient",
    "topk": "k",
    "batchtopk": "k",
    "jumprelu": "l0_coefficient",
    "matryoshka_batchtopk": "k",
}
SPARSITY_TAGS = {"k": "k", "l1_coefficient": "l1c", "l0_coefficient": "l0c"}


def _key_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
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


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend into allOf/if-then wrappers to the error that names the real key."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


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


def validate_config(config: dict, schema_path: str | Path, *, source: str = "config") -> dict:
    """Validate ``config`` against the JSON schema and the rules a schema can't say.

    Returns a copy with defaults filled in. Raises :class:`SaesimError` with one
    line naming the key, the value and what is allowed.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise SaesimError(f"{source}: {_describe(_deepest(errors[0]))}")
    config = copy.deepcopy(config)
    set_defaults(config, schema, schema)
    for name, exp in config["experiments"].items():
        for i, variant in enumerate(exp["sae"]["variants"]):
            key = SPARSITY_KEYS[variant["architecture"]]
            where = f"{source}: experiments.{name}.sae.variants[{i}]"
            wrong = [k for k in ("k", "l1_coefficient", "l0_coefficient") if k in variant and k != key]
            if wrong:
                raise SaesimError(f"{where}: {variant['architecture']} takes {key}, not {', '.join(wrong)}")
            if key == "k":
                for k in variant["k"]:
                    if k >= variant["width"]:
                        raise SaesimError(f"{where}.k: k={k} must be smaller than width={variant['width']}")
                    if variant["architecture"] == "topk" and k != int(k):
                        raise SaesimError(f"{where}.k: topk needs whole numbers, got {k}")
            for w in variant.get("matryoshka_widths", []):
                if w > variant["width"]:
                    raise SaesimError(f"{where}.matryoshka_widths: {w} exceeds width={variant['width']}")
            known = exp.get("hooks", ["toy"])
            for hook in variant.get("hooks", []):
                if hook not in known:
                    raise SaesimError(f"{where}.hooks: {hook!r} is not a hook of {name}; hooks: {', '.join(known)}")
        if exp["source"]["kind"] != "toy" and not exp.get("hooks"):
            raise SaesimError(f"{source}: experiments.{name}.hooks: a {exp['source']['kind']} experiment needs a list of hook points")
        if exp["source"]["kind"] == "toy" and exp.get("hooks", ["toy"]) != ["toy"]:
            raise SaesimError(f"{source}: experiments.{name}.hooks: a toy experiment has the single hook 'toy'")
        if exp["source"]["kind"] == "modular":
            src = exp["source"]
            if src["n_heads"] * src["d_head"] != src["d_model"]:
                raise SaesimError(
                    f"{source}: experiments.{name}.source: n_heads * d_head must equal d_model "
                    f"({src['n_heads']} * {src['d_head']} != {src['d_model']})"
                )
        if exp["source"]["kind"] == "toy":
            from .synthetic import check_model_values, resolve_source

            exp["source"] = resolve_source(exp["source"], f"{source}: experiments.{name}.source")
            model_schema = {**schema["$defs"]["synthetic_model"], "$defs": schema["$defs"]}
            model_errors = sorted(jsonschema.Draft202012Validator(model_schema).iter_errors(exp["source"]["model"]),
                                  key=lambda e: (list(map(str, e.absolute_path)), e.validator))
            if model_errors:
                err = _deepest(model_errors[0])
                path = ".".join(map(str, err.absolute_path))
                raise SaesimError(f"{source}: experiments.{name}.source.model{'.' + path if path else ''} (after the preset): {err.message}")
            check_model_values(exp["source"]["model"], f"{source}: experiments.{name}.source.model")
    for name, cmp in config.get("comparisons", {}).items():
        for side in ("a", "b"):
            ref = cmp[side]
            where = f"{source}: comparisons.{name}.{side}"
            exp = config["experiments"].get(ref["experiment"])
            if exp is None:
                raise SaesimError(f"{where}.experiment: {ref['experiment']!r} is not an experiment; experiments: {', '.join(config['experiments'])}")
            by_id = {v.id: v for v in expand_variants(exp)}
            if ref["variant"] not in by_id:
                raise SaesimError(f"{where}.variant: {ref['variant']!r} is not a variant of {ref['experiment']}; variants: {', '.join(by_id)}")
            if "seed" in ref and ref["seed"] not in exp["sae"]["seeds"]:
                raise SaesimError(f"{where}.seed: {ref['seed']} is not among the seeds {exp['sae']['seeds']} of {ref['experiment']}")
            variant = by_id[ref["variant"]]
            known = [h for h in exp.get("hooks", ["toy"]) if variant.trained_at(h)]
            for hook in ref.get("hooks", []):
                if hook not in known:
                    raise SaesimError(
                        f"{where}.hooks: {hook!r} is not a hook {ref['experiment']} trains {ref['variant']} at; hooks: {', '.join(known)}"
                    )
    return config


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


def expand_variants(exp: dict) -> list[Variant]:
    """Every (architecture, width, sparsity) of an experiment, with a stable id like ``topk-w50-k11``."""
    out = []
    for entry in exp["sae"]["variants"]:
        key = SPARSITY_KEYS[entry["architecture"]]
        options = tuple(
            sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in entry.items() if k not in ("architecture", "width", "hooks", key))
        )
        hooks = tuple(entry["hooks"]) if entry.get("hooks") is not None else None
        for value in entry[key]:
            vid = f"{entry['architecture']}-w{entry['width']}-{SPARSITY_TAGS[key]}{format_number(value)}"
            out.append(Variant(vid, entry["architecture"], entry["width"], key, float(value), options, hooks))
    ids = [v.id for v in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SaesimError(f"config: duplicate SAE variants {dupes}")
    return out


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
    """A toy source's expected L0 (sum of marginal firing probabilities; see saesim.synthetic), else None."""
    if source.get("kind") != "toy":
        return None
    from .synthetic import expected_l0 as synthetic_expected_l0

    return synthetic_expected_l0(source)


def source_hash(paths: Iterable[str | Path]) -> str:
    """Hash of source files: a rule's ``params`` entry, so editing the code reruns the rule."""
    h = hashlib.sha256()
    for path in sorted(map(str, paths)):
        h.update(path.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]
