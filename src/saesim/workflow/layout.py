"""Where every artifact of the workflow lives, built from what it is.

An artifact's identity (:class:`ArtifactId`: experiment, hook, variant, seeds, role) plus its
kind (a key of :data:`TEMPLATES`) gives its path (:func:`path`); Snakemake wildcard patterns
come from the same templates (:func:`pattern`), and so does the inverse (:func:`parse`), which
tables use only for artifacts written before identities were recorded in them
(:func:`identity_in`). Adding an artifact kind is one line in :data:`TEMPLATES`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Mapping

#: every artifact lies below this folder (relative to the project folder)
RESULTS = "results"
#: ``real``: an artifact of the experiment; ``null``: of its trained Gaussian null
#: (results/<exp>/null/...); ``randmodel``: of its random-weights model null (results/<exp>/randmodel/...)
ROLES = ("real", "null", "randmodel")
_ROLE_DIR = {"real": "", "null": "null/", "randmodel": "randmodel/"}
_ROLE_NAME = {"real": "the experiment", "null": "the trained null", "randmodel": "the random-weights model null"}

#: kind -> path below RESULTS. Fields: ``exp``, ``hook``, ``variant``, ``seed`` (one SAE) or
#: ``a``/``b`` (a seed pair) and ``null`` (the role's folder: none, ``null/`` or ``randmodel/``) come from the identity; the
#: others are keywords of :func:`path`. Field names are the workflow's wildcard names.
TEMPLATES = {
    # one SAE, one seed pair, one store (of the experiment or of its trained null)
    "store": "{exp}/{null}stores/{hook}.h5",
    "sae": "{exp}/{null}saes/{hook}/{variant}/seed{seed}",
    "pair": "{exp}/{null}pairs/{hook}/{variant}/seed{a}-seed{b}.json",
    "ground_truth": "{exp}/{null}ground_truth/{hook}/{variant}/seed{seed}.json",
    "fourier": "{exp}/{null}fourier/{hook}/{variant}/seed{seed}.json",
    "resume": ".resume/{exp}/{null}{hook}/{variant}/seed{seed}",
    "trained_cache": ".trained/{exp}/{null}{hook}/{variant}/seed{seed}",
    "baseline": "{exp}/baselines/{hook}/w{width}.json",
    "per_latent": "{exp}/{null}per_latent/{hook}/{variant}/seed{seed}.h5",
    "causal": "{exp}/causal/{hook}/{variant}/seed{a}-seed{b}.json",
    "feature_page": "{exp}/{null}features/{hook}/{variant}/seed{a}-seed{b}.html",
    # one experiment
    "corpus": "{exp}/corpus.npz",
    "junk_tokens": "{exp}/junk_token_ids.json",
    "feature_index": "{exp}/features/index.html",
    "feature_suite_page": "{exp}/features/suites/{suite}/{member_a}__{member_b}.html",
    "model": "{exp}/model",
    "downstream": "{exp}/downstream.json",
    "convergence": "{exp}/convergence.json",
    "seed_modes": "{exp}/seed_modes.json",
    "pwmcc_vs_gtmcc": "{exp}/ground_truth/pwmcc_vs_gtmcc.json",
    "imported": "{exp}/saes_imported/{label}.json",
    "table": "{exp}/tables/{name}",
    "figure": "figures/{exp}_{name}.{ext}",
    # across experiments
    "comparison": "comparisons/{cmp}/{hook_a}__{hook_b}.{ext}",
    "comparison_table": "comparisons/{cmp}/results.csv",
    "transfer_table": "comparisons/{cmp}/transfer.csv",
    "comparison_causal": "comparisons/{cmp}/causal.json",
    "comparison_figure": "figures/cmp-{cmp}_{name}.{ext}",
    "suite_cell": "suites/{suite}/{member_a}__{member_b}.json",
    "suite_matrix": "suites/{suite}/matrix.csv",
    "suite_figure": "figures/suite-{suite}_{name}.{ext}",
    "summary": "summary.{ext}",
    "summary_figure": "figures/summary-{name}.{ext}",
    "summary_table": "tables/summary-{name}.csv",
}

#: what a field matches when a path is parsed (default: one path component)
FIELD_PATTERNS = {
    "exp": r"[A-Za-z0-9-]+",  # one path component, no "_" (figures/<exp>_<name>)
    "cmp": r"[A-Za-z0-9-]+",
    "suite": r"[A-Za-z0-9-]+",
    "seed": r"\d+",
    "a": r"\d+",
    "b": r"\d+",
    "width": r"\d+",
    "ext": r"[A-Za-z0-9]+",
    "hook_a": r"[^/]+?",
}
_ANY = r"[^/]+"
_IDENTITY_FIELDS = {"exp", "hook", "variant", "seed", "a", "b", "null"}


@dataclass(frozen=True)
class ArtifactId:
    """What an artifact is about: experiment, hook, SAE variant, seed(s) and role.

    ``seeds`` holds one seed (an SAE and what is measured on it), two (a seed pair) or none
    (a store, a baseline, an experiment-wide file). Fields may be Snakemake wildcards
    (``"{exp}"``) when a path pattern is built.
    """

    experiment: str
    hook: str | None = None
    variant: str | None = None
    seeds: tuple = ()
    role: str = "real"

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(self.seeds))
        if self.role not in ROLES:
            raise ValueError(f"artifact role {self.role!r} is not one of {', '.join(ROLES)}")

    def to_dict(self) -> dict:
        """The ``identity`` entry written into an artifact's JSON."""
        return {
            "experiment": self.experiment,
            "hook": self.hook,
            "variant": self.variant,
            "seeds": [_seed(s) for s in self.seeds],
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArtifactId":
        return cls(d["experiment"], d.get("hook"), d.get("variant"), tuple(d.get("seeds", ())), d.get("role", "real"))

    @classmethod
    def from_wildcards(cls, wildcards: Any, role: str = "real") -> "ArtifactId":
        """The identity of a job's output from its wildcards ``exp``, ``hook``, ``variant``,
        ``seed`` or ``a`` and ``b`` (those the rule has)."""
        w = dict(wildcards.items()) if hasattr(wildcards, "items") else dict(vars(wildcards))
        seeds = (w["seed"],) if "seed" in w else tuple(w[k] for k in ("a", "b") if k in w)
        return cls(w["exp"], w.get("hook"), w.get("variant"), tuple(_seed(s) for s in seeds), role)

    @property
    def null(self) -> bool:
        return self.role == "null"

    @property
    def seed(self):
        """The seed of an SAE's artifact (exactly one seed)."""
        if len(self.seeds) != 1:
            raise ValueError(f"{self}: has {len(self.seeds)} seeds, not one")
        return self.seeds[0]


def _seed(s):
    return int(s) if isinstance(s, str) and s.isdigit() else s


def natural_key(name: Any) -> list:
    """Sort key for names with numbers in them: ``layers.2`` before ``layers.10``, ``blocks.6`` before ``blocks.15``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


def fields(kind: str) -> list[str]:
    """The fields of a kind's template, in order."""
    return [f for _, f, _, _ in string.Formatter().parse(_template(kind)) if f]


def _template(kind: str) -> str:
    try:
        return TEMPLATES[kind]
    except KeyError:
        raise ValueError(f"unknown artifact kind {kind!r}; kinds: {', '.join(TEMPLATES)}") from None


def _identity_fields(kind: str, ident: ArtifactId) -> dict:
    names = set(fields(kind))
    out = {"exp": ident.experiment, "hook": ident.hook, "variant": ident.variant}
    if "null" in names:
        out["null"] = _ROLE_DIR[ident.role]
    elif ident.role != "real":
        raise ValueError(f"{kind}: {_ROLE_NAME[ident.role]} has no such artifact ({ident})")
    n_seeds = 1 if "seed" in names else 2 if "a" in names else 0
    if len(ident.seeds) != n_seeds:
        raise ValueError(f"{kind}: needs {n_seeds} seed(s), got {list(ident.seeds)}")
    if n_seeds == 1:
        out["seed"] = ident.seeds[0]
    elif n_seeds == 2:
        out["a"], out["b"] = ident.seeds
    return {k: v for k, v in out.items() if k in names}


def path(kind: str, ident: ArtifactId | None = None, *, root: str = RESULTS, **extra) -> str:
    """The path of one artifact: ``path("pair", ArtifactId("toy", "toy", "topk-w8-k3", (0, 1)))``."""
    values = dict(extra)
    if ident is not None:
        values.update(_identity_fields(kind, ident))
    missing = [f for f in fields(kind) if f not in values or values[f] is None]
    if missing:
        raise ValueError(f"{kind}: path needs {', '.join(missing)}")
    return f"{root}/{_template(kind).format(**values)}" if root else _template(kind).format(**values)


class _Wildcards(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def pattern(kind: str, role: str = "real", *, root: str = RESULTS, **extra) -> str:
    """A Snakemake pattern of a kind: every field not given stays a wildcard of its name,
    e.g. ``pattern("sae", "null", seed="{a}")`` is ``results/{exp}/null/saes/{hook}/{variant}/seed{a}``."""
    if role not in ROLES:
        raise ValueError(f"artifact role {role!r} is not one of {', '.join(ROLES)}")
    template = _template(kind)
    if role != "real" and "{null}" not in template:
        raise ValueError(f"{kind}: {_ROLE_NAME[role]} has no such artifact")
    out = template.format_map(_Wildcards(extra, null=_ROLE_DIR[role]))
    return f"{root}/{out}" if root else out


def _regex(kind: str) -> re.Pattern:
    parts = []
    for literal, field, _, _ in string.Formatter().parse(_template(kind)):
        parts.append(re.escape(literal))
        if field == "null":
            parts.append(r"(?P<null>(?:null|randmodel)/)?")
        elif field:
            parts.append(f"(?P<{field}>{FIELD_PATTERNS.get(field, _ANY)})")
    return re.compile("(?:^|/)" + re.escape(RESULTS) + "/" + "".join(parts) + "/?$")


def parse(kind: str, artifact_path: Any) -> tuple[ArtifactId | None, dict]:
    """The inverse of :func:`path`: (identity or None for kinds without an experiment, the other
    fields). Raises ValueError for a path that is not of that kind under a ``results`` folder."""
    m = _regex(kind).search(str(artifact_path).replace("\\", "/"))
    if not m:
        raise ValueError(f"{artifact_path}: not a saesim {kind} path ({RESULTS}/{_template(kind)})")
    g = m.groupdict()
    extra = {k: int(v) if k == "width" else v for k, v in g.items() if k not in _IDENTITY_FIELDS}
    if "exp" not in g:
        return None, extra
    seeds = (g["seed"],) if "seed" in g else tuple(g[k] for k in ("a", "b") if k in g)
    role = g["null"].rstrip("/") if g.get("null") else "real"
    ident = ArtifactId(g["exp"], g.get("hook"), g.get("variant"), tuple(int(s) for s in seeds), role)
    return ident, extra


def identity_in(artifact: Mapping[str, Any], kind: str, artifact_path: Any) -> ArtifactId:
    """The identity an artifact records (key ``identity``), else the one its path says
    (artifacts written before identities were recorded)."""
    if "identity" in artifact:
        return ArtifactId.from_dict(artifact["identity"])
    return parse(kind, artifact_path)[0]


#: what one job's log is named by -> its part of the log path (fields are wildcard names)
LOG_KEYS = {
    "exp": "{exp}",
    "hook": "{exp}/{hook}",
    "variant": "{exp}/{hook}/{variant}",
    "sae": "{exp}/{hook}/{variant}/seed{seed}",
    "pair": "{exp}/{hook}/{variant}/seed{a}-seed{b}",
    "width": "{exp}/{hook}/w{width}",
    "label": "{exp}/{label}",
    "cmp": "{cmp}",
    "hook_pair": "{cmp}/{hook_a}__{hook_b}",
    "suite": "{suite}",
    "cell": "{suite}/{a}__{b}",
    "summary": "summary",
}
#: every job's log, below RESULTS
LOG = "logs/{rule}/{key}.log"


def log(rule: str, per: str, *, root: str = RESULTS, **values) -> str:
    """The log of one of ``rule``'s jobs, named by :data:`LOG_KEYS` ``[per]``: fields given in
    ``values`` are filled in, the others stay wildcards, e.g. ``log("train_saes", "exp", exp="toy")``
    is ``results/logs/train_saes/toy.log`` and ``log("compare_seed_pair", "pair")`` a pattern."""
    try:
        key = LOG_KEYS[per]
    except KeyError:
        raise ValueError(f"unknown log key {per!r}; keys: {', '.join(LOG_KEYS)}") from None
    out = LOG.format(rule=rule, key=key.format_map(_Wildcards(values)))
    return f"{root}/{out}" if root else out


#: an SAE's key inside experiment-wide artifacts (downstream.json, co-activation tables)
SAE_KEY = "{hook}/{variant}/seed{seed}"


def sae_key(ident: ArtifactId) -> str:
    return SAE_KEY.format(hook=ident.hook, variant=ident.variant, seed=ident.seed)


def sae_key_identity(key: str, experiment: str, role: str = "real") -> ArtifactId:
    """The inverse of :func:`sae_key` (the experiment and role are not in the key)."""
    m = re.fullmatch(r"(?P<hook>[^/]+)/(?P<variant>[^/]+)/seed(?P<seed>\d+)", key)
    if not m:
        raise ValueError(f"{key!r}: not an SAE key ({SAE_KEY})")
    return ArtifactId(experiment, m["hook"], m["variant"], (int(m["seed"]),), role)
