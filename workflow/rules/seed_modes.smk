# Shared vs independent initialisation (saesim.seed_modes): one variant at one hook under
# each sae.seed_mode (both, init_only, data_only) for the same seed labels, each with its
# trajectory from the initialised SAE. The experiment's own mode reads its published SAEs
# (their training job keeps the snapshots); the other modes are trained in this job.


rule seed_modes:
    input:
        store=lambda w: store_path(w.exp, seed_modes_target(EXPERIMENTS[w.exp])[1]),
        saes=lambda w: seed_modes_published(w.exp),
        baseline=lambda w: seed_modes_baseline(w.exp),
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
        "results/logs/seed_modes/{exp}.log",
    wildcard_constraints:
        exp=experiments_with_seed_modes(),
    params:
        variant=lambda w: seed_modes_target(EXPERIMENTS[w.exp])[0],
        hook=lambda w: seed_modes_target(EXPERIMENTS[w.exp])[1],
        fractions=lambda w: seed_modes_target(EXPERIMENTS[w.exp])[3],
        own_mode=lambda w: EXPERIMENTS[w.exp]["sae"].get("seed_mode", "both"),
        seeds=lambda w: seeds(w.exp),
        specs=lambda w: seed_modes_specs(w.exp),
        memory_budget_mb=config["memory_budget_mb"],
        code=code_of("scripts/seed_modes.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=seed_modes_mem_mb,
        runtime=seed_modes_runtime,
        gpu=GPU,
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
        "results/logs/plot_seed_modes/{exp}.log",
    wildcard_constraints:
        exp=experiments_with_seed_modes(),
    params:
        code=code_of("scripts/plot_seed_modes.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_seed_modes.py"
