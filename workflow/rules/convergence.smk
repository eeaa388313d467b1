# Convergence: the training trajectory of one variant's seeds (real and null), read from the
# snapshots its training job kept in the published SAE folders (fraction 0 = the initialised
# SAE): stability, quality and drift from initialisation at each snapshot. Nothing is trained.


rule convergence:
    input:
        store=lambda w: plan.store(w.exp, plan.snapshot_target(w.exp, "convergence").hook),
        saes=lambda w: plan.target_saes(w.exp, "convergence"),
        null_store=lambda w: plan.convergence_null_store(w.exp),
        null_saes=lambda w: plan.target_saes(w.exp, "convergence", null=True),
        baseline=lambda w: plan.target_baseline(w.exp, "convergence"),
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
        layout.log("convergence", "exp"),
    wildcard_constraints:
        exp=plan.experiments_with("convergence"),
    params:
        variant=lambda w: plan.snapshot_target(w.exp, "convergence").variant,
        hook=lambda w: plan.snapshot_target(w.exp, "convergence").hook,
        fractions=lambda w: plan.snapshot_target(w.exp, "convergence").fractions,
        seeds=lambda w: plan.seeds(w.exp),
        specs=lambda w: plan.convergence_specs(w.exp),
        null_seeds=lambda w: plan.convergence_null_seeds(w.exp),
        null_specs=lambda w: plan.convergence_specs(w.exp, null=True),
        memory_budget_mb=config["memory_budget_mb"],
        code=code_of("scripts/convergence.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("convergence"),
        runtime=plan.cost.runtime("convergence"),
        gpu=plan.gpu,
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
        layout.log("plot_convergence", "exp"),
    wildcard_constraints:
        exp=plan.experiments_with("convergence"),
    params:
        code=code_of("scripts/plot_convergence.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_convergence.py"
