# One table of every SAE variant of every experiment: results/summary.{csv,md,html}.


rule summary_table:
    input:
        stability=[layout.path("table", ArtifactId(exp), name="stability.csv") for exp in plan.trained()],
        fourier=[layout.path("table", ArtifactId(exp), name="fourier.csv") for exp in plan.experiments if plan.has_fourier(exp)],
        per_latent=[layout.path("table", ArtifactId(exp), name="per_latent.csv") for exp in plan.experiments if plan.per_latent_enabled(exp)],
    output:
        csv=report(
            layout.path("summary", ext="csv"),
            caption="../report/summary.rst",
            category="Summary",
            subcategory="All experiments",
            labels={"table": "summary of all SAE variants (CSV)"},
        ),
        md=report(
            layout.path("summary", ext="md"),
            caption="../report/summary.rst",
            category="Summary",
            subcategory="All experiments",
            labels={"table": "summary of all SAE variants (Markdown)"},
        ),
        html=report(
            layout.path("summary", ext="html"),
            caption="../report/summary.rst",
            category="Summary",
            subcategory="All experiments",
            labels={"table": "summary of all SAE variants (view)"},
        ),
    log:
        layout.log("summary_table", "summary"),
    params:
        kinds={exp: e["source"]["kind"] for exp, e in plan.experiments.items()},
        code=code_of("scripts/summary_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/summary_table.py"
