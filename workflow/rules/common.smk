# Configuration validation, path helpers and input functions shared by all rules.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from saesim.config import (  # noqa: E402
    check_device_available,
    convergence_target,
    LANGUAGE_KINDS,
    expected_l0,
    validate_config,
)
from saesim import source_kinds  # noqa: E402
from saesim.config import seed_modes_target  # noqa: E402
from saesim import layout  # noqa: E402
from saesim.layout import ArtifactId  # noqa: E402
from saesim.codehash import cached_code_hash  # noqa: E402
from saesim.workflow import planning  # noqa: E402
from saesim.errors import SaesimError, check_no_broken_links  # noqa: E402

try:
    _validated = validate_config(
        dict(config), workflow.source_path("../schemas/config.schema.yaml"), source="config"
    )
except SaesimError as _err:
    raise WorkflowError(f"Invalid configuration: {_err}") from None
config.clear()
config.update(_validated)

EXPERIMENTS = config["experiments"]

# experiment names are single path components, so results/{exp}/null/... never matches
# a rule of the real artifacts with an experiment named "{exp}/null"
wildcard_constraints:
    exp=layout.FIELD_PATTERNS["exp"],

SRC = Path(workflow.basedir) / "src" / "saesim"
DEVICE = config["device"]


onstart:
    # after the DAG is built and before any job: the executor is known only here, and jobs
    # submitted to a cluster find their GPU on their node, not on this (login) host
    if workflow.local_exec:
        try:
            check_device_available(DEVICE)
        except SaesimError as _err:
            raise WorkflowError(f"Invalid configuration: {_err}") from None



def code_of(script):
    """A rule's ``code`` param: hash of its script (path from the repository root) and every
    saesim module the script imports, transitively (saesim.codehash). Editing any of them
    reruns the rule's jobs; moving the project folder reruns nothing."""
    return cached_code_hash(str(Path(workflow.basedir) / script), str(SRC))


def check_code_params(rules):
    """Each scripted rule has ``code=code_of("scripts/<its script>")`` (checked at the end of the Snakefile)."""
    for r in rules:
        if r.script is None:
            continue
        script = f"scripts/{Path(r.script).name}"
        if r.params.get("code") != code_of(script):
            raise WorkflowError(
                f"params of rule {r.name} need code=code_of({script!r}), so that editing the code it runs reruns it"
            )


def uses_gpu():
    if DEVICE == "cuda":
        return True
    if DEVICE == "cpu":
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


GPU = 1 if uses_gpu() else 0


def experiments_of_kind(*kinds):
    return planning.names_regex(n for n, e in EXPERIMENTS.items() if planning.kind(e) in kinds)


def experiments_where(**query):
    """Wildcard pattern of the experiments whose source kind has ``field=value`` (saesim.source_kinds)."""
    return experiments_of_kind(*source_kinds.kinds(**query))


def source_kind(exp):
    return source_kinds.of(EXPERIMENTS[exp])


def hooks(exp):
    return planning.hooks(EXPERIMENTS[exp])


def variants(exp):
    return planning.variants(EXPERIMENTS[exp])


def seeds(exp):
    return EXPERIMENTS[exp]["sae"]["seeds"]


def seed_pairs(exp):
    return planning.seed_pairs(seeds(exp))


def has_ground_truth(exp):
    return planning.has_ground_truth(EXPERIMENTS[exp])


def store_path(exp, hook):
    return layout.path("store", ArtifactId(exp, hook))


def sae_dir(exp, hook, variant, seed):
    return layout.path("sae", ArtifactId(exp, hook, variant, (seed,)))


def role_of(null):
    return "null" if null else "real"


def job_identity(role="real"):
    """A rule's ``identity`` param: the identity of its job's output (saesim.layout.ArtifactId
    from the wildcards), which the script writes into the artifact."""
    return lambda w: ArtifactId.from_wildcards(w, role).to_dict()


def rule_name(prefix, exp):
    """Name of the rule ``prefix`` generated for one experiment."""
    return f"{prefix}_{exp.replace('-', '_')}"


def regex_of(name):
    """A wildcard constraint matching exactly ``name``."""
    import re

    return re.escape(name)


def sae_spec_of(exp_name, variant, seed):
    """Keyword arguments of saesim.training.SAESpec for one SAE."""
    return planning.sae_spec(EXPERIMENTS[exp_name], variant, seed, config["threads_per_job"], DEVICE)


def sae_seeds(exp, null=False):
    """Seed labels of an experiment's SAEs, or of its null SAEs."""
    return null_seeds(exp) if null else seeds(exp)


def trained_sae_dir(exp, hook, variant, seed, null=False):
    """An SAE folder; the null's mirror the real ones under results/{exp}/null/."""
    return layout.path("sae", ArtifactId(exp, hook, variant, (seed,), role_of(null)))


def sae_specs_of(null):
    """Input function: the SAESpec keyword arguments of every seed of one training job."""
    return lambda w: [sae_spec_of(w.exp, w.variant, s) for s in sae_seeds(w.exp, null)]


def side_dir(kind, exp, hook, variant, seed, null=False):
    """An SAE's folder of layout kind ``kind`` (resume checkpoints, trained SAEs kept), outside results/{exp}."""
    return layout.path(kind, ArtifactId(exp, hook, variant, (seed,), role_of(null)))


def side_dirs_of(kind, null):
    """Input function: one folder per seed of layout kind ``kind`` (resume checkpoints, trained SAEs kept)."""
    return lambda w: [side_dir(kind, w.exp, w.hook, w.variant, s, null) for s in sae_seeds(w.exp, null)]


def sae_identities_of(null):
    """Input function: the identity of every SAE of one training job, in the order of its outputs."""
    return lambda w: [ArtifactId(w.exp, w.hook, w.variant, (s,), role_of(null)).to_dict() for s in sae_seeds(w.exp, null)]


def hook_variants(exp):
    """Every (hook, variant id) an experiment trains SAEs for, hooks first."""
    return planning.hook_variants(EXPERIMENTS[exp])


def all_sae_dirs(exp):
    return [sae_dir(exp, h, v, s) for h, v in hook_variants(exp) for s in seeds(exp)]


def all_pair_files(exp):
    return [
        layout.path("pair", ArtifactId(exp, h, v, (a, b)))
        for h, v in hook_variants(exp)
        for a, b in seed_pairs(exp)
    ]


def all_baseline_files(exp):
    widths = planning.baseline_widths(EXPERIMENTS[exp])
    return [layout.path("baseline", ArtifactId(exp, h), width=w) for h in hooks(exp) for w in widths[h]]


def all_ground_truth_files(exp):
    if not has_ground_truth(exp):
        return []
    return [
        layout.path("ground_truth", ArtifactId(exp, h, v, (s,)))
        for h, v in hook_variants(exp)
        for s in seeds(exp)
    ]


def all_downstream_files(exp):
    """The downstream-loss JSON of a language-model experiment (none for other kinds)."""
    return [layout.path("downstream", ArtifactId(exp))] if planning.is_language(EXPERIMENTS[exp]) else []


def downstream_inputs(wildcards):
    exp = wildcards.exp
    return {
        "corpus": layout.path("corpus", ArtifactId(exp)),
        "stores": [store_path(exp, h) for h in hooks(exp)],
        "saes": [sae_dir(exp, h, v, s) for h, v in hook_variants(exp) for s in seeds(exp)],
    }


def sae_keys(exp):
    """``hook/variant/seed<s>`` of every SAE of an experiment, in the order of all_sae_dirs."""
    return [layout.sae_key(ArtifactId(exp, h, v, (s,))) for h, v in hook_variants(exp) for s in seeds(exp)]


def truth_heatmap_saes(wildcards):
    """The first seed's SAE of each panel (saesim.workflow.planning.truth_heatmap_variants)."""
    try:
        picked = planning.truth_heatmap_variants(EXPERIMENTS[wildcards.exp], f"experiments.{wildcards.exp}")
    except SaesimError as err:
        raise WorkflowError(str(err)) from None
    seed = seeds(wildcards.exp)[0]
    return [sae_dir(wildcards.exp, hooks(wildcards.exp)[0], v, seed) for v in picked]


def is_modular(exp):
    return planning.is_modular(EXPERIMENTS[exp])


def has_fourier(exp):
    """The experiment's stores carry Fourier key frequencies (Fourier overlap of decoder rows)."""
    return planning.has_fourier(EXPERIMENTS[exp])


def modular_model_config(exp):
    """Keyword arguments of saesim.models.modular.ModularConfig for one experiment."""
    return planning.modular_model_config(EXPERIMENTS[exp], DEVICE)


def all_fourier_files(exp):
    return [
        layout.path("fourier", ArtifactId(exp, h, v, (s,)))
        for h, v in hook_variants(exp)
        for s in seeds(exp)
    ]


def has_convergence(exp):
    return planning.has_convergence(EXPERIMENTS[exp])


def convergence_saes(exp):
    """The published SAEs (one per seed) of the variant an experiment measures convergence of."""
    variant, hook, _ = convergence_target(EXPERIMENTS[exp])
    return [sae_dir(exp, hook, variant, s) for s in seeds(exp)]


def convergence_baseline(exp):
    """The random-decoder baseline file of that variant's shape (rule decoder_baseline)."""
    variant, hook, _ = convergence_target(EXPERIMENTS[exp])
    return layout.path("baseline", ArtifactId(exp, hook), width=variants(exp)[variant].width)


def experiments_with_convergence():
    return planning.names_regex(n for n in EXPERIMENTS if has_convergence(n))


def convergence_specs(exp, null=False):
    """saesim.training.SAESpec keyword arguments of those SAEs, as the training rule builds them."""
    variant, _, _ = convergence_target(EXPERIMENTS[exp])
    return [sae_spec_of(exp, variant, s) for s in sae_seeds(exp, null)]


def convergence_null_seeds(exp):
    """The null seeds whose training trajectory the convergence job reads (none without a null)."""
    return null_seeds(exp) if null_enabled(exp) else []


def convergence_null_saes(exp):
    """The null's SAEs (one per null seed) of the convergence variant, with their snapshots."""
    variant, hook, _ = convergence_target(EXPERIMENTS[exp])
    return [trained_sae_dir(exp, hook, variant, s, True) for s in convergence_null_seeds(exp)]


def convergence_null_store(exp):
    variant, hook, _ = convergence_target(EXPERIMENTS[exp])
    return [null_store_path(exp, hook)] if null_enabled(exp) else []


def snapshot_fractions(exp, hook, variant):
    """Fractions of training (below 1) at which the training job keeps snapshots of an SAE:
    those of the experiment's convergence and seed_modes blocks for their variant and hook,
    else none."""
    if is_imported(exp):
        return []
    keep = set()
    for target in (convergence_target(EXPERIMENTS[exp]), seed_modes_target(EXPERIMENTS[exp])):
        if target is not None and (target[0], target[1]) == (variant, hook):
            keep |= {f for f in target[-1] if f < 1}
    return sorted(keep)


# ---- shared vs independent initialisation (seed_modes.smk)


def has_seed_modes(exp):
    return planning.has_seed_modes(EXPERIMENTS[exp])


def experiments_with_seed_modes():
    return planning.names_regex(n for n in EXPERIMENTS if has_seed_modes(n))


def seed_modes_specs(exp):
    """{mode: [SAESpec keyword arguments per seed]} of the seed-mode comparison."""
    import copy

    variant, _, modes, _ = seed_modes_target(EXPERIMENTS[exp])
    out = {}
    for mode in modes:
        e = copy.deepcopy(EXPERIMENTS[exp])
        e["sae"]["seed_mode"] = mode
        out[mode] = [planning.sae_spec(e, variant, s, config["threads_per_job"], DEVICE) for s in seeds(exp)]
    return out


def seed_modes_published(exp):
    """The published SAEs serve the experiment's own seed mode (when compared); [] otherwise."""
    variant, hook, modes, _ = seed_modes_target(EXPERIMENTS[exp])
    if EXPERIMENTS[exp]["sae"].get("seed_mode", "both") not in modes:
        return []
    return [sae_dir(exp, hook, variant, s) for s in seeds(exp)]


def seed_modes_baseline(exp):
    variant, hook, _, _ = seed_modes_target(EXPERIMENTS[exp])
    return layout.path("baseline", ArtifactId(exp, hook), width=variants(exp)[variant].width)


def snapshots_of(null):
    """Input function: the snapshot fractions of every seed of one training job."""
    return lambda w: [snapshot_fractions(w.exp, w.hook, w.variant) for _ in sae_seeds(w.exp, null)]


# ---- the trained null (null.smk): results/{exp}/null/... mirror the real artifacts


def null_enabled(exp):
    """Trained experiments train the null unless told not to; imported SAEs have no null."""
    return planning.null_enabled(EXPERIMENTS[exp])


def null_seeds(exp):
    return EXPERIMENTS[exp]["null"]["seeds"]


def null_store_path(exp, hook):
    return layout.path("store", ArtifactId(exp, hook, role="null"))


def moments_source(exp, hook):
    """Where the store's mean and covariance come from (saesim.geometry.load_moments): the null
    store, which keeps them as fitted in its one streaming pass; else the store itself."""
    return null_store_path(exp, hook) if null_enabled(exp) else store_path(exp, hook)


def row_exclusions(exp):
    """The rows SAE training leaves out (for moments streamed from the store itself)."""
    sae = EXPERIMENTS[exp]["sae"]
    return {"exclude_positions": list(sae.get("exclude_positions", [])), "exclude_norm_above": sae.get("exclude_norm_above")}


def all_causal_files(exp):
    """Causal equivalence (geometry.smk): seeds 0-1 of each variant listed under causal:, per hook."""
    c = EXPERIMENTS[exp].get("causal") or {}
    if not c.get("variants"):
        return []
    if not is_modular(exp) or len(seeds(exp)) < 2:
        raise WorkflowError(f"Invalid configuration: experiments.{exp}.causal: needs a modular-addition experiment with at least two sae.seeds")
    known = {v for _, v in hook_variants(exp)}
    unknown = [v for v in c["variants"] if v not in known]
    if unknown:
        raise WorkflowError(f"Invalid configuration: experiments.{exp}.causal.variants: {unknown} not among {sorted(known)}")
    a, b = seeds(exp)[:2]
    return [
        layout.path("causal", ArtifactId(exp, h, v, (a, b)))
        for h, v in hook_variants(exp)
        if v in c["variants"] and (not c.get("hooks") or h in c["hooks"])
    ]


def null_seed_pairs(exp):
    return planning.seed_pairs(null_seeds(exp))


def all_null_sae_dirs(exp):
    if not null_enabled(exp):
        return []
    return [trained_sae_dir(exp, h, v, s, null=True) for h, v in hook_variants(exp) for s in null_seeds(exp)]


def all_null_pair_files(exp):
    if not null_enabled(exp):
        return []
    return [
        layout.path("pair", ArtifactId(exp, h, v, (a, b), "null"))
        for h, v in hook_variants(exp)
        for a, b in null_seed_pairs(exp)
    ]


def all_null_ground_truth_files(exp):
    if not (null_enabled(exp) and has_ground_truth(exp)):
        return []
    return [layout.path("ground_truth", ArtifactId(exp, h, v, (s,), "null")) for h, v in hook_variants(exp) for s in null_seeds(exp)]


def all_null_fourier_files(exp):
    if not (null_enabled(exp) and has_fourier(exp)):
        return []
    return [layout.path("fourier", ArtifactId(exp, h, v, (s,), "null")) for h, v in hook_variants(exp) for s in null_seeds(exp)]


def figure_files(exp):
    """The figures an experiment draws (saesim.workflow.planning.FIGURES), PDF and PNG."""
    return [
        layout.path("figure", ArtifactId(exp), name=name, ext=ext)
        for name in planning.figure_names(EXPERIMENTS[exp])
        for ext in ("pdf", "png")
    ]


COMPARISONS = config.get("comparisons", {})


def comparison_side(cmp, side):
    """(experiment, variant, seed, hooks) of one side of a comparison."""
    ref = COMPARISONS[cmp][side]
    exp = ref["experiment"]
    trained = [h for h, v in hook_variants(exp) if v == ref["variant"]]
    return exp, ref["variant"], ref.get("seed", seeds(exp)[0]), ref.get("hooks", trained)


def comparison_inputs(wildcards):
    exp_a, var_a, seed_a, _ = comparison_side(wildcards.cmp, "a")
    exp_b, var_b, seed_b, _ = comparison_side(wildcards.cmp, "b")
    out = {
        "store_a": store_path(exp_a, wildcards.hook_a),
        "sae_a": sae_dir(exp_a, wildcards.hook_a, var_a, seed_a),
        "store_b": store_path(exp_b, wildcards.hook_b),
        "sae_b": sae_dir(exp_b, wildcards.hook_b, var_b, seed_b),
    }
    for side, exp in (("a", exp_a), ("b", exp_b)):
        if planning.is_language(EXPERIMENTS[exp]):
            out[f"junk_{side}"] = layout.path("junk_tokens", ArtifactId(exp))
    return out


def comparison_options(cmp):
    return planning.comparison_options(COMPARISONS[cmp])


def comparison_files(cmp):
    _, _, _, hooks_a = comparison_side(cmp, "a")
    _, _, _, hooks_b = comparison_side(cmp, "b")
    return [layout.path("comparison", cmp=cmp, hook_a=ha, hook_b=hb, ext="json") for ha in hooks_a for hb in hooks_b]


# ---- suites: imported SAEs and cross-variant matrices (workflow/rules/suites.smk) ----

from saesim import suite_runs  # noqa: E402


def is_imported(exp):
    return planning.is_imported(EXPERIMENTS[exp])


def _expand_imported_all():
    out = {}
    for exp, e in EXPERIMENTS.items():
        if not source_kinds.of(e).trains_saes:
            try:
                items = suite_runs.expand_imported(e["source"]["saes"], f"experiments.{exp}.source.saes")
            except SaesimError as err:
                raise WorkflowError(f"Invalid configuration: {err}") from None
            out[exp] = {item["label"]: item for item in items}
    return out


IMPORTED = _expand_imported_all()


def imported_identity_file(exp, label):
    return layout.path("imported", ArtifactId(exp), label=label)


def imported_inputs(wildcards):
    src = EXPERIMENTS[wildcards.exp]["source"]
    out = {"files": IMPORTED[wildcards.exp][wildcards.label]["files"]}
    if src.get("store"):
        out["store"] = src["store"]
    return out


SUITES = config.get("suites", {})


def suite_members(suite):
    """Member label -> {spec, info (file the cell job reads), kind, and what a trained member needs}."""
    s = SUITES[suite]
    exp = s["experiment"]
    if is_imported(exp):
        labels = s.get("members") or list(IMPORTED[exp])
        for m in labels:
            if m not in IMPORTED[exp]:
                raise WorkflowError(
                    f"Invalid configuration: suites.{suite}.members: {m!r} is not an SAE of {exp}; "
                    f"labels: {', '.join(IMPORTED[exp])}"
                )
        if len(labels) < 2:
            raise WorkflowError(f"Invalid configuration: suites.{suite}.members: a suite needs at least two SAEs")
        return {
            m: {"kind": "imported", "spec": IMPORTED[exp][m]["spec"], "info": imported_identity_file(exp, m)}
            for m in labels
        }
    out = {}
    for m in s["members"]:
        hook, variant = planning.suite_member_hook_variant(s, m)
        d = sae_dir(exp, hook, variant, s["seed"])
        out[m] = {"kind": "trained", "spec": d, "info": d, "hook": hook, "variant": variant, "seed": s["seed"]}
    return out


def _check_suites_up_front():
    """Every suite's members (and, for imported SAEs, their common d_in) at start-up: one line
    each, not an error inside an input function (InputFunctionException) or a later job."""
    for suite in SUITES:
        members = suite_members(suite)  # raises WorkflowError("Invalid configuration: ...")
        if is_imported(SUITES[suite]["experiment"]):
            try:
                suite_runs.check_same_d({m: v["spec"] for m, v in members.items()}, f"suites.{suite}")
            except SaesimError as err:
                raise WorkflowError(f"Invalid configuration: {err}") from None


_check_suites_up_front()


def _check_store_links():
    """A store replaced by a broken symlink (or one to itself) would count as present: stop instead."""
    paths = []
    for _e in EXPERIMENTS:
        if source_kinds.of(EXPERIMENTS[_e]).trains_saes:
            paths += [store_path(_e, h) for h in hooks(_e)]
            if null_enabled(_e):
                paths += [null_store_path(_e, h) for h in hooks(_e)]
    try:
        check_no_broken_links(paths, "activation store")
    except SaesimError as err:
        raise WorkflowError(f"Invalid configuration: {err}") from None


_check_store_links()


def suite_pairs(suite):
    return planning.pairs(suite_members(suite))


def suite_cell_files(suite):
    return [layout.path("suite_cell", suite=suite, member_a=a, member_b=b) for a, b in suite_pairs(suite)]


def suite_cell_inputs(wildcards):
    members = suite_members(wildcards.suite)
    return {"a": members[wildcards.a]["info"], "b": members[wildcards.b]["info"]}


def suite_cell_params(wildcards):
    s = SUITES[wildcards.suite]
    members = suite_members(wildcards.suite)
    return {
        side: {k: v for k, v in members[getattr(wildcards, side)].items() if k != "info"} | {"label": getattr(wildcards, side)}
        for side in ("a", "b")
    } | {
        "options": dict(
            suite=wildcards.suite,
            axis=s["axis"],
            cosine=s["cosine"],
            thresholds=list(s["thresholds"]),
            top_m=s["top_m"],
            memory_budget_mb=config["memory_budget_mb"],
            baseline_draws=config["baseline_draws"],
            seed=0,
        )
    }


def suite_files(suite):
    out = [layout.path("suite_matrix", suite=suite)]
    exts = ("pdf", "png")
    out += [layout.path("suite_figure", suite=suite, name="matrix", ext=ext) for ext in exts]
    if SUITES[suite]["axis"] == "width":
        out += [layout.path("suite_figure", suite=suite, name="splitting", ext=ext) for ext in exts]
    return out


def imported_files(exp):
    return [imported_identity_file(exp, label) for label in IMPORTED[exp]] + [layout.path("table", ArtifactId(exp), name="imported_saes.csv")]


def all_targets():
    out = []
    for suite in SUITES:
        out += suite_files(suite)
    for cmp in COMPARISONS:
        out += [
            layout.path("comparison_table", cmp=cmp),
            layout.path("transfer_table", cmp=cmp),
            layout.path("comparison_figure", cmp=cmp, name="paired_vs_random", ext="pdf"),
            layout.path("comparison_figure", cmp=cmp, name="layer_heatmap", ext="pdf"),
        ]
    for exp in EXPERIMENTS:
        if is_imported(exp):
            out += imported_files(exp)
            continue
        out += [layout.path("table", ArtifactId(exp), name=n) for n in ("stability.csv", "summary.md")]
        if has_fourier(exp):
            out.append(layout.path("table", ArtifactId(exp), name="fourier.csv"))
        out += figure_files(exp)
        out += per_latent_files(exp)  # per_latent.smk
        out += feature_page_files(exp)
    out += [layout.path("summary", ext=ext) for ext in ("csv", "md", "html")]
    for exp in EXPERIMENTS:
        if not is_imported(exp):
            out += all_causal_files(exp)
    # agreement per coordinate system (geometry.smk)
    out += [layout.path("summary_figure", name="coordinate_spaces", ext=ext) for ext in ("pdf", "png")]
    out.append(layout.path("summary_table", name="coordinate_spaces"))
    return out


# Feature pages (features.smk)


def feature_pages_enabled(exp):
    return config["feature_pages"]["enabled"] and not is_imported(exp) and len(seeds(exp)) >= 2


def feature_page_jobs(exp):
    a, b = seed_pairs(exp)[0]
    return [
        {
            "exp": exp, "hook": h, "variant": v, "a": a, "b": b,
            "sae_a": sae_dir(exp, h, v, a), "sae_b": sae_dir(exp, h, v, b), "store": store_path(exp, h),
            "out": layout.path("feature_page", ArtifactId(exp, h, v, (a, b))),
        }
        for h, v in hook_variants(exp)
    ]


def feature_page_files(exp):
    if not feature_pages_enabled(exp):
        return []
    return [layout.path("feature_index", ArtifactId(exp))] + [j["out"] for j in feature_page_jobs(exp)]
