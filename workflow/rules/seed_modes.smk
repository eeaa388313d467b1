# Shared vs independent initialisation (saesim.analysis.seed_modes): one variant at one hook under
# each sae.seed_mode (both, init_only, data_only) for the same seed labels, each with its
# trajectory from the initialised SAE. The experiment's own mode reads its published SAEs
# (their training job keeps the snapshots); the other modes are trained in this job.


rule seed_modes:
    input:
        store=lambda w: plan.store(w.exp, plan.snapshot_target(w.exp, "seed_modes").hook),
        saes=lambda w: plan.seed_modes_published(w.exp),
        baseline=lambda w: plan.target_baseline(w.exp, "seed_modes"),
    output:
        json=layout.pattern("seed_modes"),
        table=report(
            layout.pattern("table", name="seed_modes.csv"),
            caption="../report/seed_modes_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "shared vs independent initialisation (CSV)"},
        ),
    log:
        layout.log("seed_modes", "exp"),
    wildcard_constraints:
        exp=plan.experiments_with("seed_modes"),
    params:
        variant=lambda w: plan.snapshot_target(w.exp, "seed_modes").variant,
        hook=lambda w: plan.snapshot_target(w.exp, "seed_modes").hook,
        fractions=lambda w: plan.snapshot_target(w.exp, "seed_modes").fractions,
        own_mode=lambda w: plan.own_seed_mode(w.exp),
        seeds=lambda w: plan.seeds(w.exp),
        specs=lambda w: plan.seed_modes_specs(w.exp),
        memory_budget_mb=config["memory_budget_mb"],
        code=code_of("scripts/seed_modes.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("seed_modes"),
        runtime=plan.cost.runtime("seed_modes"),
        gpu=plan.gpu,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/seed_modes.py"


rule plot_seed_modes:
    input:
        table=layout.pattern("table", name="seed_modes.csv"),
    output:
        pdf=layout.pattern("figure", name="seed_modes", ext="pdf"),
        png=report(
            layout.pattern("figure", name="seed_modes", ext="png"),
            caption="../report/seed_modes.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "shared vs independent initialisation"},
        ),
    log:
        layout.log("plot_seed_modes", "exp"),
    wildcard_constraints:
        exp=plan.experiments_with("seed_modes"),
    params:
        code=code_of("scripts/plot_seed_modes.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_seed_modes.py"
