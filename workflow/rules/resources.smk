# Resources of every job: threads, memory, run time and GPUs.
#
# Convention for all rule files, present and future (e.g. models.smk, universality.smk).
#
#   * Each rule sets threads (1, or config["threads_per_job"] where it runs torch with
#     that many threads) and, in its resources block, mem_mb=<fn> and runtime=<fn> with
#     functions from this file named <rule>_mem_mb / <rule>_runtime (or shared ones:
#     table_mem_mb, short_runtime).
#     Rule files hold no sizes: sizes follow the job (SAE width, store rows, d). The cost
#     model itself (formulas, constants) is saesim.workflow.resources, unit-tested; this file
#     only wraps it, passing the experiment's config, the job's wildcards and the attempt.
#     On SLURM, threads become --cpus-per-task, mem_mb --mem, runtime (minutes) -t.
#   * A rule whose script runs torch on the configured device (SAE training, language-model
#     extraction, the modular model, later large comparisons) adds `gpu=plan.gpu` (common.smk:
#     1 when config `device` resolves to CUDA, else 0). CPU-only rules have no gpu key.
#     gpu=0 requests nothing; gpu=1 becomes `--gpus=1` on SLURM, counts against
#     `--resources gpu=N` on a workstation, and saesim.workflow.rulekit.run() pins the job to a
#     free device (saesim.workflow.gpu) unless SLURM already chose one (CUDA_VISIBLE_DEVICES).
#     The submitting host decides: a login node without a plan.gpu resolves device=auto to
#     CPU, so a plan.gpu cluster is run with --config device=cuda.
#   * Functions take (wildcards, attempt): memory and run time grow with the attempt, so a
#     job killed for memory or time (the SLURM profile retries) asks for more next time.
#     Per-experiment rules (declared in a loop) call a factory: mem_mb=extract_mem_mb(exp).
#   * Everything here is an estimate with a safety margin; a profile or the command line
#     overrides any rule: set-resources: {train_saes_smollm2: {mem_mb: 64000, runtime: 720}} or
#     --set-resources train_saes_smollm2:runtime=720 (per-experiment rules: train_saes_<exp>, extract_activations_<exp>).

from saesim.workflow import resources as cost  # noqa: E402


def _width(wildcards):
    if hasattr(wildcards, "variant"):
        return plan.variants(wildcards.exp)[wildcards.variant].width
    return int(wildcards.width)


def _hook_widths(exp):
    """(hook, width) of every SAE variant an experiment trains."""
    return [(h, plan.variants(exp)[v].width) for h, v in plan.hook_variants(exp)]


# ---- shared -------------------------------------------------------------------


def table_mem_mb(wildcards, attempt):
    """Tables and figures: pandas and matplotlib on small CSVs."""
    return cost.table_mem_mb(attempt)


def short_runtime(wildcards, attempt):
    return cost.short_runtime(attempt)


# ---- stores.smk ---------------------------------------------------------------


def make_toy_store_mem_mb(wildcards, attempt):
    return cost.make_toy_store_mem_mb(plan.experiments[wildcards.exp], attempt)


def make_toy_store_runtime(wildcards, attempt):
    return cost.make_toy_store_runtime(plan.experiments[wildcards.exp], attempt)


def make_null_store_mem_mb(wildcards, attempt):
    return cost.make_null_store_mem_mb(plan.experiments[wildcards.exp], wildcards.hook, attempt)


def make_null_store_runtime(wildcards, attempt):
    return cost.make_null_store_runtime(plan.experiments[wildcards.exp], wildcards.hook, attempt)


# ---- saes.smk -----------------------------------------------------------------


def train_sae_mem_mb(wildcards, attempt):
    return cost.train_sae_mem_mb(plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), attempt)


def train_sae_runtime(wildcards, threads, attempt):
    return cost.train_sae_runtime(plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), threads, plan.gpu, attempt)


def train_saes_runtime(wildcards, threads, attempt):
    """Every seed of a variant, one after the other."""
    return len(plan.seeds(wildcards.exp)) * train_sae_runtime(wildcards, threads, attempt)


def train_experiment_mem_mb(exp):
    """Resource function of a job that trains every SAE of an experiment (sae.train_jobs:
    experiment): the largest one, as they train one after the other."""
    return lambda wildcards, attempt: cost.train_experiment_mem_mb(plan.experiments[exp], _hook_widths(exp), attempt)


def train_experiment_runtime(exp, null):
    """Every hook, variant and seed of an experiment, one after the other."""
    n_seeds = len(plan.seeds(exp, null))
    return lambda wildcards, threads, attempt: cost.train_experiment_runtime(
        plan.experiments[exp], _hook_widths(exp), n_seeds, threads, plan.gpu, attempt
    )


# ---- similarity.smk -----------------------------------------------------------


def compare_mem_mb(wildcards, attempt):
    return cost.compare_mem_mb(
        plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), config["memory_budget_mb"], attempt
    )


def compare_runtime(wildcards, attempt):
    return cost.compare_runtime(plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), attempt)


def decoder_baseline_runtime(wildcards, attempt):
    return cost.decoder_baseline_runtime(
        plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), config["baseline_draws"], attempt
    )


def sae_eval_mem_mb(wildcards, attempt):
    return cost.sae_eval_mem_mb(plan.experiments[wildcards.exp], wildcards.hook, _width(wildcards), attempt)


# ---- figures.smk --------------------------------------------------------------


def plot_latent_vs_truth_mem_mb(wildcards, attempt):
    widths = [v.width for v in plan.variants(wildcards.exp).values()]
    return cost.plot_latent_vs_truth_mem_mb(plan.experiments[wildcards.exp], widths, attempt)


# ---- models.smk ---------------------------------------------------------------


def train_modular_model_mem_mb(wildcards, attempt):
    return cost.train_modular_model_mem_mb(plan.experiments[wildcards.exp], attempt)


def train_modular_model_runtime(wildcards, threads, attempt):
    return cost.train_modular_model_runtime(plan.experiments[wildcards.exp], threads, plan.gpu, attempt)


def extract_modular_mem_mb(exp):
    return lambda wildcards, attempt: cost.extract_modular_mem_mb(plan.experiments[exp], plan.hooks(exp), attempt)


def extract_modular_runtime(exp):
    return lambda wildcards, attempt: cost.extract_modular_runtime(plan.experiments[exp], plan.hooks(exp), attempt)


def build_corpus_mem_mb(wildcards, attempt):
    return cost.build_corpus_mem_mb(plan.experiments[wildcards.exp], attempt)


def build_corpus_runtime(wildcards, attempt):
    return cost.build_corpus_runtime(plan.experiments[wildcards.exp], attempt)


def extract_mem_mb(exp):
    return lambda wildcards, attempt: cost.extract_mem_mb(plan.experiments[exp], plan.hooks(exp), attempt)


def extract_runtime(exp):
    return lambda wildcards, threads, attempt: cost.extract_runtime(plan.experiments[exp], plan.hooks(exp), threads, plan.gpu, attempt)


# ---- universality.smk ---------------------------------------------------------


def _comparison_sides(wildcards):
    """(aligned rows, [(d, width, typical L0) for sides a and b]) of one comparison job."""
    sides, rows = [], []
    for side, hook in (("a", wildcards.hook_a), ("b", wildcards.hook_b)):
        exp, variant, _, _ = plan.comparison_side(wildcards.cmp, side)
        v = plan.variants(exp)[variant]
        n, d = cost.store_shape(plan.experiments[exp], hook)
        rows.append(n)
        sides.append((d, v.width, cost.typical_l0(v)))
    n = min(rows)
    return min(n, plan.comparisons[wildcards.cmp].get("max_tokens") or n), sides


def compare_by_activations_mem_mb(wildcards, attempt):
    rows, sides = _comparison_sides(wildcards)
    return cost.compare_by_activations_mem_mb(rows, sides, plan.comparisons[wildcards.cmp]["max_rows"], attempt)


def compare_by_activations_runtime(wildcards, threads, attempt):
    rows, sides = _comparison_sides(wildcards)
    return cost.compare_by_activations_runtime(rows, sides, threads, attempt)


def downstream_mem_mb(wildcards, attempt):
    exp = wildcards.exp
    widths = [w for _, w in _hook_widths(exp)]
    return cost.downstream_mem_mb(plan.experiments[exp], widths, len(plan.seeds(exp)), attempt)


def downstream_runtime(wildcards, threads, attempt):
    exp = wildcards.exp
    n_saes = len(plan.hook_variants(exp)) * len(plan.seeds(exp))
    return cost.downstream_runtime(plan.experiments[exp], len(plan.hooks(exp)), n_saes, threads, plan.gpu, attempt)


def coactivation_mem_mb(wildcards, attempt):
    exp = wildcards.exp
    trained = [plan.variants(exp)[v] for _, v in plan.hook_variants(exp)]
    return cost.coactivation_mem_mb(plan.experiments[exp], trained, attempt)


def coactivation_runtime(wildcards, attempt):
    exp = wildcards.exp
    widths = [w for _, w in _hook_widths(exp)]
    return cost.coactivation_runtime(plan.experiments[exp], plan.hooks(exp), widths, len(plan.seeds(exp)), attempt)


# ---- convergence.smk ----------------------------------------------------------


def _convergence_job(wildcards):
    """(experiment config, hook, width, number of fractions) of an experiment's convergence job."""
    variant, hook, fractions, _ = plan.snapshot_target(wildcards.exp, "convergence")
    return plan.experiments[wildcards.exp], hook, plan.variants(wildcards.exp)[variant].width, len(fractions)


def convergence_mem_mb(wildcards, attempt):
    exp, hook, width, n_fractions = _convergence_job(wildcards)
    return cost.convergence_mem_mb(exp, hook, width, n_fractions, len(plan.seeds(wildcards.exp)), attempt, len(plan.convergence_null_seeds(wildcards.exp)))


def convergence_runtime(wildcards, threads, attempt):
    exp, hook, width, n_fractions = _convergence_job(wildcards)
    return cost.convergence_runtime(
        exp, hook, width, n_fractions, len(plan.seeds(wildcards.exp)), threads, plan.gpu, attempt, len(plan.convergence_null_seeds(wildcards.exp))
    )


# ---- suites.smk ---------------------------------------------------------------


def _imported_shape(exp, label):
    """(latents, d) of an imported SAE: its cfg.json, or suite_runs.UNKNOWN_SAE_SHAPE."""
    item = plan.imported[exp][label]
    shape = None if item["registry"] else suite_runs.local_shape(item["spec"])
    return shape or suite_runs.UNKNOWN_SAE_SHAPE


def _suite_member_shape(suite, label):
    """(latents, d) of one suite member: the variant's width and store d, or an imported SAE's cfg.json."""
    s = plan.suites[suite]
    exp = s["experiment"]
    if plan.is_imported(exp):
        return _imported_shape(exp, label)
    hook, variant = planning.suite_member_hook_variant(s, label)
    return plan.variants(exp)[variant].width, cost.store_shape(plan.experiments[exp], hook)[1]


def _uses_registry(exp, *labels):
    return any(plan.imported[exp][lab]["registry"] for lab in labels)


def import_sae_mem_mb(wildcards, attempt):
    item = plan.imported[wildcards.exp][wildcards.label]
    heavy = item["registry"] or plan.experiments[wildcards.exp]["source"].get("store")
    return cost.import_sae_mem_mb(_imported_shape(wildcards.exp, wildcards.label), heavy, attempt)


def import_sae_runtime(wildcards, attempt):
    src = plan.experiments[wildcards.exp]["source"]
    rows = src["eval_rows"] if src.get("store") else 0
    return cost.import_sae_runtime(_imported_shape(wildcards.exp, wildcards.label), rows, attempt)


def suite_cell_mem_mb(wildcards, attempt):
    n_a, d = _suite_member_shape(wildcards.suite, wildcards.a)
    n_b, _ = _suite_member_shape(wildcards.suite, wildcards.b)
    exp = plan.suites[wildcards.suite]["experiment"]
    heavy = plan.is_imported(exp) and _uses_registry(exp, wildcards.a, wildcards.b)
    return cost.suite_cell_mem_mb(n_a, n_b, d, heavy, config["memory_budget_mb"], attempt)


def suite_cell_runtime(wildcards, attempt):
    n_a, d = _suite_member_shape(wildcards.suite, wildcards.a)
    n_b, _ = _suite_member_shape(wildcards.suite, wildcards.b)
    return cost.suite_cell_runtime(n_a, n_b, d, config["baseline_draws"], attempt)


# ---- per_latent.smk -------------------------------------------------------------


def _per_latent_shapes(exp):
    return [(plan.variants(exp)[v].width, cost.store_shape(plan.experiments[exp], h)[1]) for h, v in plan.hook_variants(exp)]


def per_latent_mem_mb(exp):
    return lambda wildcards, attempt: cost.per_latent_mem_mb(plan.experiments[exp], _per_latent_shapes(exp), config["memory_budget_mb"], attempt)


def per_latent_runtime(exp):
    return lambda wildcards, attempt: cost.per_latent_runtime(plan.experiments[exp], _per_latent_shapes(exp), attempt)


# ---- seed_modes.smk -------------------------------------------------------------


def _seed_modes_job(wildcards):
    variant, hook, fractions, modes = plan.snapshot_target(wildcards.exp, "seed_modes")
    own = plan.own_seed_mode(wildcards.exp)
    return plan.experiments[wildcards.exp], hook, plan.variants(wildcards.exp)[variant].width, len(fractions), len(modes), len([m for m in modes if m != own])


def seed_modes_mem_mb(wildcards, attempt):
    exp, hook, width, n_fractions, n_modes, _ = _seed_modes_job(wildcards)
    return max(
        cost.train_sae_mem_mb(exp, hook, width, attempt),
        cost.convergence_mem_mb(exp, hook, width, n_fractions, len(plan.seeds(wildcards.exp)), attempt),
    )


def seed_modes_runtime(wildcards, threads, attempt):
    """Training the modes other than the experiment's own, and reading every mode's trajectory."""
    exp, hook, width, n_fractions, n_modes, n_trained = _seed_modes_job(wildcards)
    n = len(plan.seeds(wildcards.exp))
    train = n_trained * n * cost.train_sae_runtime(exp, hook, width, threads, plan.gpu, attempt)
    return train + n_modes * cost.convergence_runtime(exp, hook, width, n_fractions, n, threads, plan.gpu, attempt)
