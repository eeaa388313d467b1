# Pairwise similarity of SAEs, their random baselines, ground-truth recovery and tables.


rule compare_seed_pair:
    input:
        a=layout.pattern("sae", seed="{a}"),
        b=layout.pattern("sae", seed="{b}"),
        # the store's mean and covariance, for the mean-removed and whitened metrics (geometry)
        moments=lambda w: plan.moments_source(w.exp, w.hook),
    output:
        layout.pattern("pair"),
    log:
        layout.log("compare_seed_pair", "pair"),
    wildcard_constraints:
        a=r"\d+",
        b=r"\d+",
    params:
        memory_budget_mb=config["memory_budget_mb"],
        row_exclusions=lambda w: plan.row_exclusions(w.exp),
        identity=planning.job_identity(),
        code=code_of("scripts/compare_seed_pair.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("compare_seed_pair"),
        runtime=plan.cost.runtime("compare_seed_pair"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/compare_seed_pair.py"


rule decoder_baseline:
    input:
        store=lambda w: plan.store(w.exp, w.hook),
        moments=lambda w: plan.moments_source(w.exp, w.hook),
    output:
        layout.pattern("baseline"),
    log:
        layout.log("decoder_baseline", "width"),
    wildcard_constraints:
        width=r"\d+",
    params:
        draws=config["baseline_draws"],
        memory_budget_mb=config["memory_budget_mb"],
        row_exclusions=lambda w: plan.row_exclusions(w.exp),
        identity=planning.job_identity(),
        code=code_of("scripts/decoder_baseline.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("decoder_baseline"),
        runtime=plan.cost.runtime("decoder_baseline"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/decoder_baseline.py"


rule ground_truth_recovery:
    input:
        sae=layout.pattern("sae"),
        store=lambda w: plan.store(w.exp, w.hook),
    output:
        layout.pattern("ground_truth"),
    log:
        layout.log("ground_truth_recovery", "sae"),
    wildcard_constraints:
        seed=r"\d+",
    params:
        identity=planning.job_identity(),
        code=code_of("scripts/ground_truth_recovery.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("ground_truth_recovery"),
        runtime=plan.cost.runtime("ground_truth_recovery"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/ground_truth_recovery.py"


rule stability_table:
    input:
        saes=lambda w: plan.saes(w.exp),
        pairs=lambda w: plan.pair_files(w.exp),
        baselines=lambda w: plan.baseline_files(w.exp),
        ground_truth=lambda w: plan.ground_truth_files(w.exp),
        downstream=lambda w: plan.downstream_files(w.exp),
        null_saes=lambda w: plan.saes(w.exp, null=True),
        null_pairs=lambda w: plan.pair_files(w.exp, null=True),
        null_ground_truth=lambda w: plan.ground_truth_files(w.exp, null=True),
        randmodel_saes=lambda w: plan.saes(w.exp, "randmodel"),
        randmodel_pairs=lambda w: plan.pair_files(w.exp, "randmodel"),
    output:
        stability=report(
            layout.pattern("table", name="stability.csv"),
            caption="../report/stability_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "stability per variant (CSV)"},
        ),
        pairs=report(
            layout.pattern("table", name="pairs.csv"),
            caption="../report/pairs_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "stability per seed pair (CSV)"},
        ),
        saes=report(
            layout.pattern("table", name="saes.csv"),
            caption="../report/saes_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "quality per SAE (CSV)"},
        ),
        summary=report(
            layout.pattern("table", name="summary.md"),
            caption="../report/summary_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "stability summary (Markdown)"},
        ),
    log:
        layout.log("stability_table", "exp"),
    params:
        true_l0=lambda w: plan.true_l0(w.exp),
        code=code_of("scripts/stability_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/stability_table.py"
