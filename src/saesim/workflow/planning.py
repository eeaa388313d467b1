"""DAG planning of the workflow: which SAEs an experiment trains, which seed pairs it
compares, which figure panels it draws, and the keyword arguments of its jobs.

Pure functions of one experiment's validated config (``exp``: ``config["experiments"][name]``,
defaults filled by the schema) or of other config blocks; ``workflow/rules/common.smk`` wraps
them with the experiment names and wildcards of its input functions.

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

from .. import source_kinds
from ..architectures import figure_choice
from ..config import convergence_target, expand_variants, expected_l0, seed_pair
from ..errors import SaesimError

#: a regex that matches nothing: the wildcard constraint of a rule no experiment uses
NO_MATCH = "(?!x)x"


def names_regex(names):
    """A wildcard constraint matching exactly one of ``names`` (none: nothing)."""
    names = list(names)
    return "|".join(names) if names else NO_MATCH


# ---- what an experiment is ------------------------------------------------------


def kind(exp):
    return exp["source"]["kind"]


def has_ground_truth(exp):
    """Sources that know their true features (saesim.source_kinds: ground_truth)."""
    return source_kinds.of(exp).ground_truth


def is_modular(exp):
    """The experiment trains its own modular-addition model (grokking curves)."""
    return source_kinds.of(exp).store_rule == "modular"


def has_fourier(exp):
    """The experiment's stores carry Fourier key frequencies (Fourier overlap of decoder rows)."""
    return source_kinds.of(exp).fourier


def is_imported(exp):
    """Imported SAEs, nothing trained (saesim.source_kinds: trains_saes false)."""
    return not source_kinds.of(exp).trains_saes


def is_language(exp):
    return source_kinds.of(exp).language_model


def has_convergence(exp):
    return convergence_target(exp) is not None


def has_seed_modes(exp):
    """Whether an experiment compares shared and independent initialisation (saesim.seed_modes)."""
    from ..config import seed_modes_target

    return "sae" in exp and seed_modes_target(exp) is not None


def null_enabled(exp):
    """Trained experiments train the null unless told not to; imported SAEs have no null."""
    return not is_imported(exp) and exp["null"]["enabled"]


# ---- SAEs and seed pairs ----------------------------------------------------------


def hooks(exp):
    """The hooks an experiment reads (saesim.source_kinds: a toy source has one, ``toy``)."""
    return source_kinds.hooks_of(exp)


def variants(exp):
    """Variant id -> saesim.config.Variant, in config order."""
    return {v.id: v for v in expand_variants(exp)}


def hook_variants(exp):
    """Every (hook, variant id) an experiment trains SAEs for, hooks first."""
    vs = variants(exp)
    return [(h, vid) for h in hooks(exp) for vid, v in vs.items() if v.trained_at(h)]


def pairs(items):
    """Every unordered pair of ``items``, in their order: (a, b) with a before b."""
    items = list(items)
    return [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]


def seed_pairs(seeds):
    """Every pair of seed labels, smaller first."""
    return pairs(sorted(seeds))


def baseline_widths(exp):
    """Hook -> the sorted SAE widths trained at it (one random-decoder baseline each)."""
    vs = variants(exp)
    trained = hook_variants(exp)
    return {h: sorted({vs[v].width for hv, v in trained if hv == h}) for h in hooks(exp)}


def sae_spec(exp, variant, seed, threads, device):
    """Keyword arguments of saesim.training.SAESpec for one SAE (variant id, seed label)."""
    v = variants(exp)[variant]
    init_seed, data_seed = seed_pair(exp, int(seed))
    training = dict(exp["sae"]["training"])
    options = dict(v.options)
    training["lr"] = options.pop("lr", training["lr"])
    spec = dict(
        architecture=v.architecture,
        width=v.width,
        sparsity=v.sparsity,
        init_seed=init_seed,
        data_seed=data_seed,
        exclude_positions=list(exp["sae"]["exclude_positions"]),
        exclude_norm_above=exp["sae"].get("exclude_norm_above"),
        threads=threads,
        device=device,
        **training,
    )
    if "matryoshka_widths" in options:
        spec["matryoshka_widths"] = list(options.pop("matryoshka_widths"))
    spec.update(options)
    return spec


def modular_model_config(exp, device):
    """Keyword arguments of saesim.models.modular.ModularConfig for one experiment."""
    src = dict(exp["source"])
    for key in ("kind", "key_rel_threshold"):
        src.pop(key, None)
    src["device"] = device
    return src


# ---- figure panels ----------------------------------------------------------------

#: every per-experiment figure, in target order, and whether an experiment draws it
FIGURES = {
    "stability_vs_l0": lambda exp: True,
    "seed_heatmap": lambda exp: True,
    "recovery_vs_l0": has_ground_truth,
    "latent_vs_truth": has_ground_truth,
    "pwmcc_vs_gtmcc": has_ground_truth,
    "grokking": is_modular,
    "fourier_overlap": has_fourier,
    "coactivation": lambda exp: True,
    "convergence": has_convergence,
    "seed_modes": lambda exp: has_seed_modes(exp),
}


def figure_names(exp):
    """The figures an experiment draws, in the order of FIGURES."""
    return [name for name, applies in FIGURES.items() if applies(exp)]


def truth_heatmap_variants(exp, where):
    """Variant ids of the latent x true-feature heatmap's panels: the SAEs below, nearest
    to, and above the true L0 (fewer when they coincide), for one architecture.

    The architecture is the k-sparse one with the most sparsities (ties: the registry's
    figure_rank, batchtopk first; saesim.architectures.figure_choice). ``where`` names the
    experiment in the error (``experiments.<name>``).
    """
    true_l0 = expected_l0(exp["source"])
    by_arch = {}
    for v in variants(exp).values():
        if v.sparsity_key == "k":
            by_arch.setdefault(v.architecture, []).append(v)
    if not by_arch:
        raise SaesimError(f"{where}: the latent x true-feature heatmap needs a k-sparse SAE variant")
    arch = figure_choice({a: len(vs) for a, vs in by_arch.items()})
    vs = sorted(by_arch[arch], key=lambda v: v.sparsity)
    at = min(vs, key=lambda v: abs(v.sparsity - true_l0))
    return list({v.id: v for v in (vs[0], at, vs[-1])})


# ---- comparisons and suites ---------------------------------------------------------


def comparison_options(cmp):
    """A comparison's options for saesim.universality (its block without the sides a and b)."""
    c = dict(cmp)
    c.pop("a")
    c.pop("b")
    c["seed"] = 0
    return c


def suite_member_hook_variant(suite, label):
    """(hook, variant id) of one member of a suite of trained SAEs: along ``axis: hook``
    members are hooks of the suite's variant, otherwise variants at the suite's hook."""
    return (label, suite["variant"]) if suite["axis"] == "hook" else (suite["hook"], label)
