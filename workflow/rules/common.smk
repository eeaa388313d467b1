# Configuration validation, path helpers and input functions shared by all rules.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from saesim.config import (  # noqa: E402
    expand_variants,
    expected_l0,
    seed_pair,
    source_hash,
    validate_config,
)
from saesim.errors import SaesimError  # noqa: E402

try:
    _validated = validate_config(
        dict(config), workflow.source_path("../schemas/config.schema.yaml"), source="config"
    )
except SaesimError as _err:
    raise WorkflowError(f"Invalid configuration: {_err}") from None
config.clear()
config.update(_validated)

EXPERIMENTS = config["experiments"]
SRC = Path(workflow.basedir) / "src" / "saesim"
DEVICE = config["device"]


def code(*modules):
    """Hash of the library modules a job runs; editing one of them reruns that job."""
    return source_hash(SRC / f"{m}.py" for m in modules)


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
LANGUAGE_KINDS = ("smollm2", "hf", "transformer_lens")


def experiments_of_kind(*kinds):
    names = [n for n, e in EXPERIMENTS.items() if e["source"]["kind"] in kinds]
    return "|".join(names) if names else "(?!x)x"


def hooks(exp):
    return EXPERIMENTS[exp].get("hooks", ["toy"])


def variants(exp):
    return {v.id: v for v in expand_variants(EXPERIMENTS[exp])}


def seeds(exp):
    return EXPERIMENTS[exp]["sae"]["seeds"]


def seed_pairs(exp):
    s = sorted(seeds(exp))
    return [(a, b) for i, a in enumerate(s) for b in s[i + 1 :]]


def has_ground_truth(exp):
    return EXPERIMENTS[exp]["source"]["kind"] == "toy"


def store_path(exp, hook):
    return f"results/{exp}/stores/{hook}.h5"


def sae_dir(exp, hook, variant, seed):
    return f"results/{exp}/saes/{hook}/{variant}/seed{seed}"


def sae_spec(wildcards):
    """Keyword arguments of saesim.training.SAESpec for one SAE job."""
    exp = EXPERIMENTS[wildcards.exp]
    v = variants(wildcards.exp)[wildcards.variant]
    init_seed, data_seed = seed_pair(exp, int(wildcards.seed))
    training = dict(exp["sae"]["training"])
    options = dict(v.options)
    training["lr"] = options.pop("lr", training["lr"])
    spec = dict(
        architecture=v.architecture,
        width=v.width,
        sparsity=v.sparsity,
        init_seed=init_seed,
        data_seed=data_seed,
        exclude_positions=list(exp["sae"].get("exclude_positions", [])),
        exclude_norm_above=exp["sae"].get("exclude_norm_above"),
        threads=config["threads_per_job"],
        device=DEVICE,
        **training,
    )
    if "matryoshka_widths" in options:
        spec["matryoshka_widths"] = list(options.pop("matryoshka_widths"))
    spec.update(options)
    return spec


def hook_variants(exp):
    """Every (hook, variant id) an experiment trains SAEs for, hooks first."""
    return [(h, vid) for h in hooks(exp) for vid, v in variants(exp).items() if v.trained_at(h)]


def all_sae_dirs(exp):
    return [sae_dir(exp, h, v, s) for h, v in hook_variants(exp) for s in seeds(exp)]


def all_pair_files(exp):
    return [
        f"results/{exp}/pairs/{h}/{v}/seed{a}-seed{b}.json"
        for h, v in hook_variants(exp)
        for a, b in seed_pairs(exp)
    ]


def all_baseline_files(exp):
    widths = {h: sorted({variants(exp)[v].width for hv, v in hook_variants(exp) if hv == h}) for h in hooks(exp)}
    return [f"results/{exp}/baselines/{h}/w{w}.json" for h in hooks(exp) for w in widths[h]]


def all_ground_truth_files(exp):
    if not has_ground_truth(exp):
        return []
    return [
        f"results/{exp}/ground_truth/{h}/{v}/seed{s}.json"
        for h, v in hook_variants(exp)
        for s in seeds(exp)
    ]


def truth_heatmap_saes(wildcards):
    """The first seed's SAE below, nearest to, and above the true L0, for one architecture.

    The architecture is the k-sparse one with the most sparsities (batchtopk first).
    """
    exp = EXPERIMENTS[wildcards.exp]
    true_l0 = expected_l0(exp["source"])
    by_arch = {}
    for v in variants(wildcards.exp).values():
        if v.sparsity_key == "k":
            by_arch.setdefault(v.architecture, []).append(v)
    if not by_arch:
        raise WorkflowError(
            f"experiments.{wildcards.exp}: the latent x true-feature heatmap needs a k-sparse SAE variant"
        )
    order = ["batchtopk", "topk", "matryoshka_batchtopk"]
    arch = max(by_arch, key=lambda a: (len(by_arch[a]), -order.index(a)))
    vs = sorted(by_arch[arch], key=lambda v: v.sparsity)
    at = min(vs, key=lambda v: abs(v.sparsity - true_l0))
    picked = list({v.id: v for v in (vs[0], at, vs[-1])}.values())  # fewer panels when they coincide
    seed = seeds(wildcards.exp)[0]
    return [sae_dir(wildcards.exp, hooks(wildcards.exp)[0], v.id, seed) for v in picked]


def is_modular(exp):
    return EXPERIMENTS[exp]["source"]["kind"] == "modular"


def modular_model_config(exp):
    """Keyword arguments of saesim.models.modular.ModularConfig for one experiment."""
    src = dict(EXPERIMENTS[exp]["source"])
    for key in ("kind", "key_rel_threshold"):
        src.pop(key, None)
    src["device"] = DEVICE
    return src


def all_fourier_files(exp):
    return [
        f"results/{exp}/fourier/{h}/{v}/seed{s}.json"
        for h, v in hook_variants(exp)
        for s in seeds(exp)
    ]


FIGURES = {
    "stability_vs_l0": lambda exp: True,
    "seed_heatmap": lambda exp: True,
    "recovery_vs_l0": has_ground_truth,
    "latent_vs_truth": has_ground_truth,
    "pwmcc_vs_gtmcc": has_ground_truth,
    "grokking": is_modular,
    "fourier_overlap": is_modular,
}


def figure_files(exp):
    return [
        f"results/figures/{exp}_{name}.{ext}"
        for name, applies in FIGURES.items()
        if applies(exp)
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
        if EXPERIMENTS[exp]["source"]["kind"] in LANGUAGE_KINDS:
            out[f"junk_{side}"] = f"results/{exp}/junk_token_ids.json"
    return out


def comparison_options(cmp):
    c = dict(COMPARISONS[cmp])
    c.pop("a")
    c.pop("b")
    c["seed"] = 0
    return c


def comparison_files(cmp):
    _, _, _, hooks_a = comparison_side(cmp, "a")
    _, _, _, hooks_b = comparison_side(cmp, "b")
    return [f"results/comparisons/{cmp}/{ha}__{hb}.json" for ha in hooks_a for hb in hooks_b]


def all_targets():
    out = []
    for cmp in COMPARISONS:
        out += [
            f"results/comparisons/{cmp}/results.csv",
            f"results/figures/cmp-{cmp}_paired_vs_random.pdf",
            f"results/figures/cmp-{cmp}_layer_heatmap.pdf",
        ]
    for exp in EXPERIMENTS:
        out += [f"results/{exp}/tables/stability.csv", f"results/{exp}/tables/summary.md"]
        if is_modular(exp):
            out.append(f"results/{exp}/tables/fourier.csv")
        out += figure_files(exp)
    out += ["results/summary.csv", "results/summary.md", "results/summary.html"]
    return out
