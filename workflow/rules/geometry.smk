# Decoder agreement in raw, mean-removed and whitened coordinates (docs/geometry.md): the
# pair and baseline rules measure every space; this figure reads them off results/summary.csv.


rule plot_coordinate_spaces:
    input:
        summary=layout.path("summary", ext="csv"),
    output:
        table=report(
            layout.path("summary_table", name="coordinate_spaces"),
            caption="../report/coordinate_spaces.rst",
            category="Summary",
            subcategory="Coordinate systems",
            labels={"result": "agreement per coordinate system (CSV)"},
        ),
        pdf=layout.path("summary_figure", name="coordinate_spaces", ext="pdf"),
        png=report(
            layout.path("summary_figure", name="coordinate_spaces", ext="png"),
            caption="../report/coordinate_spaces.rst",
            category="Summary",
            subcategory="Coordinate systems",
            labels={"result": "agreement that survives whitening (figure)"},
        ),
    log:
        layout.log("plot_coordinate_spaces", "summary"),
    params:
        code=code_of("scripts/plot_coordinate_spaces.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_coordinate_spaces.py"


# Causal equivalence of matched latents (modular and language models; config experiments.<exp>.causal).
rule causal_equivalence:
    input:
        unpack(plan.causal_inputs),
    output:
        layout.pattern("causal"),
    log:
        layout.log("causal_equivalence", "pair"),
    wildcard_constraints:
        a=r"\d+",
        b=r"\d+",
    params:
        causal=lambda w: plan.causal_options(w.exp),
        memory_budget_mb=config["memory_budget_mb"],
        identity=planning.job_identity(),
        code=code_of("scripts/causal_equivalence.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("causal_equivalence"),
        runtime=plan.cost.runtime("causal_equivalence"),
        gpu=lambda w: plan.gpu if plan.causal_options(w.exp)["kind"] == "language" else 0,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/causal_equivalence.py"


# Causal equivalence across the two models of a comparison (config comparisons.<cmp>.causal):
# each model with its SAE spliced in at its hook, the same inputs, latents paired by activation correlation.
rule causal_across_models:
    input:
        unpack(plan.causal_across_inputs),
    output:
        layout.pattern("comparison_causal"),
    log:
        layout.log("causal_across_models", "cmp"),
    wildcard_constraints:
        cmp=layout.FIELD_PATTERNS["cmp"],
    params:
        causal=lambda w: plan.causal_across_options(w.cmp),
        code=code_of("scripts/causal_across_models.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("causal_across_models"),
        runtime=plan.cost.runtime("causal_across_models"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/causal_across_models.py"
