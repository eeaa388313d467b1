# Universality across models, layers and widths: latents paired by activation
# correlation on the same tokens, then paired decoders compared relationally
# against random pairings (Lan et al. 2024). One job per pair of hooks.


rule compare_by_activations:
    input:
        unpack(plan.comparison_inputs),
    output:
        summary=layout.pattern("comparison", ext="json"),
        arrays=layout.pattern("comparison", ext="npz"),
    log:
        layout.log("compare_by_activations", "hook_pair"),
    wildcard_constraints:
        cmp=layout.FIELD_PATTERNS["cmp"],
        hook_a="[A-Za-z0-9_.-]+",
        hook_b="[A-Za-z0-9_.-]+",
    params:
        options=lambda w: plan.comparison_options(w.cmp),
        exclusions=lambda w: plan.comparison_exclusions(w.cmp),
        code=code_of("scripts/compare_by_activations.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("compare_by_activations"),
        runtime=plan.cost.runtime("compare_by_activations"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/compare_by_activations.py"


rule universality_table:
    input:
        lambda w: plan.comparison_files(w.cmp),
    output:
        report(
            layout.pattern("comparison_table"),
            caption="../report/universality_table.rst",
            category="Universality",
            subcategory="{cmp}",
            labels={"result": "similarity table (CSV)"},
        ),
    log:
        layout.log("universality_table", "cmp"),
    params:
        code=code_of("scripts/universality_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/universality_table.py"


rule plot_paired_vs_random:
    input:
        layout.pattern("comparison_table"),
        transfer=layout.pattern("transfer_table"),
    output:
        pdf=layout.pattern("comparison_figure", name="paired_vs_random", ext="pdf"),
        png=report(
            layout.pattern("comparison_figure", name="paired_vs_random", ext="png"),
            caption="../report/paired_vs_random.rst",
            category="Universality",
            subcategory="{cmp}",
            labels={"result": "paired vs random pairings"},
        ),
    log:
        layout.log("plot_paired_vs_random", "cmp"),
    params:
        code=code_of("scripts/plot_paired_vs_random.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_paired_vs_random.py"


rule plot_layer_heatmap:
    input:
        layout.pattern("comparison_table"),
    output:
        pdf=layout.pattern("comparison_figure", name="layer_heatmap", ext="pdf"),
        png=report(
            layout.pattern("comparison_figure", name="layer_heatmap", ext="png"),
            caption="../report/layer_heatmap.rst",
            category="Universality",
            subcategory="{cmp}",
            labels={"result": "hook x hook similarity"},
        ),
    log:
        layout.log("plot_layer_heatmap", "cmp"),
    params:
        code=code_of("scripts/plot_layer_heatmap.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_layer_heatmap.py"


# Transfer (docs/geometry.md): SAE A on B's held-out activations raw, after an orthogonal
# Procrustes map and after an affine map, with the within-model ceiling; measured in
# compare_by_activations, one table per comparison here.
rule transfer_table:
    input:
        lambda w: plan.comparison_files(w.cmp),
    output:
        report(
            layout.pattern("transfer_table"),
            caption="../report/transfer_table.rst",
            category="Universality",
            subcategory="{cmp}",
            labels={"result": "transfer across models (CSV)"},
        ),
    log:
        layout.log("transfer_table", "cmp"),
    params:
        code=code_of("scripts/transfer_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/transfer_table.py"
