# Convergence: the training trajectory of one variant's seeds (real and null), read from the
# snapshots its training job kept in the published SAE folders (fraction 0 = the initialised
# SAE): stability, quality and drift from initialisation at each snapshot. Nothing is trained.


rule convergence:
    input:
        store=lambda w: store_path(w.exp, convergence_target(EXPERIMENTS[w.exp])[1]),
        saes=lambda w: convergence_saes(w.exp),
        null_store=lambda w: convergence_null_store(w.exp),
        null_saes=lambda w: convergence_null_saes(w.exp),
        baseline=lambda w: convergence_baseline(w.exp),
    output:
        json=layout.pattern("convergence"),
        table=report(
            layout.pattern("table", name="convergence.csv"),
            caption="../report/convergence_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "convergence during training (CSV)"},
        ),
    log:
        "results/logs/convergence/{exp}.log",
    wildcard_constraints:
        exp=experiments_with_convergence(),
    params:
        variant=lambda w: convergence_target(EXPERIMENTS[w.exp])[0],
        hook=lambda w: convergence_target(EXPERIMENTS[w.exp])[1],
        fractions=lambda w: convergence_target(EXPERIMENTS[w.exp])[2],
        seeds=lambda w: seeds(w.exp),
        specs=lambda w: convergence_specs(w.exp),
        null_seeds=lambda w: convergence_null_seeds(w.exp),
        null_specs=lambda w: convergence_specs(w.exp, null=True) if convergence_null_seeds(w.exp) else [],
        memory_budget_mb=config["memory_budget_mb"],
        code=code_of("scripts/convergence.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=convergence_mem_mb,
        runtime=convergence_runtime,
        gpu=GPU,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/convergence.py"


rule plot_convergence:
    input:
        table=layout.pattern("table", name="convergence.csv"),
    output:
        pdf=layout.pattern("figure", name="convergence", ext="pdf"),
        png=report(
            layout.pattern("figure", name="convergence", ext="png"),
            caption="../report/convergence.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "convergence during training"},
        ),
    log:
        "results/logs/plot_convergence/{exp}.log",
    wildcard_constraints:
        exp=experiments_with_convergence(),
    params:
        code=code_of("scripts/plot_convergence.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_convergence.py"
