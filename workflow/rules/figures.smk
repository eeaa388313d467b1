# Figures: each is its own target, results/figures/<experiment>_<name>.{pdf,png}.


rule plot_stability_vs_l0:
    input:
        stability=layout.pattern("table", name="stability.csv"),
        pairs=layout.pattern("table", name="pairs.csv"),
    output:
        pdf=layout.pattern("figure", name="stability_vs_l0", ext="pdf"),
        png=report(
            layout.pattern("figure", name="stability_vs_l0", ext="png"),
            caption="../report/stability_vs_l0.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "stability vs L0"},
        ),
    log:
        layout.log("plot_stability_vs_l0", "exp"),
    params:
        true_l0=lambda w: plan.true_l0(w.exp),
        code=code_of("scripts/plot_stability_vs_l0.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_stability_vs_l0.py"


rule plot_pwmcc_vs_gtmcc:
    input:
        stability=layout.pattern("table", name="stability.csv"),
    output:
        pdf=layout.pattern("figure", name="pwmcc_vs_gtmcc", ext="pdf"),
        png=report(
            layout.pattern("figure", name="pwmcc_vs_gtmcc", ext="png"),
            caption="../report/pwmcc_vs_gtmcc.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "PW-MCC vs GT-MCC"},
        ),
        json=layout.pattern("pwmcc_vs_gtmcc"),
    log:
        layout.log("plot_pwmcc_vs_gtmcc", "exp"),
    params:
        code=code_of("scripts/plot_pwmcc_vs_gtmcc.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_pwmcc_vs_gtmcc.py"


rule plot_recovery_vs_l0:
    input:
        stability=layout.pattern("table", name="stability.csv"),
        saes=layout.pattern("table", name="saes.csv"),
    output:
        pdf=layout.pattern("figure", name="recovery_vs_l0", ext="pdf"),
        png=report(
            layout.pattern("figure", name="recovery_vs_l0", ext="png"),
            caption="../report/recovery_vs_l0.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "ground-truth recovery vs L0"},
        ),
    log:
        layout.log("plot_recovery_vs_l0", "exp"),
    params:
        true_l0=lambda w: plan.true_l0(w.exp),
        code=code_of("scripts/plot_recovery_vs_l0.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_recovery_vs_l0.py"


rule plot_seed_heatmap:
    input:
        pairs=layout.pattern("table", name="pairs.csv"),
        stability=layout.pattern("table", name="stability.csv"),
    output:
        pdf=layout.pattern("figure", name="seed_heatmap", ext="pdf"),
        png=report(
            layout.pattern("figure", name="seed_heatmap", ext="png"),
            caption="../report/seed_heatmap.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "seed x seed similarity"},
        ),
    log:
        layout.log("plot_seed_heatmap", "exp"),
    params:
        code=code_of("scripts/plot_seed_heatmap.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_seed_heatmap.py"


rule plot_latent_vs_truth:
    input:
        saes=lambda w: plan.truth_heatmap_saes(w.exp),
        store=lambda w: plan.store(w.exp, "toy"),
    output:
        pdf=layout.pattern("figure", name="latent_vs_truth", ext="pdf"),
        png=report(
            layout.pattern("figure", name="latent_vs_truth", ext="png"),
            caption="../report/latent_vs_truth.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "latent x true feature cosines"},
        ),
    log:
        layout.log("plot_latent_vs_truth", "exp"),
    params:
        true_l0=lambda w: plan.true_l0(w.exp),
        code=code_of("scripts/plot_latent_vs_truth.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("plot_latent_vs_truth"),
        runtime=plan.cost.runtime("plot_latent_vs_truth"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_latent_vs_truth.py"


rule plot_grokking:
    input:
        model=layout.pattern("model"),
    output:
        pdf=layout.pattern("figure", name="grokking", ext="pdf"),
        png=report(
            layout.pattern("figure", name="grokking", ext="png"),
            caption="../report/grokking.rst",
            category="{exp}",
            subcategory="Model",
            labels={"figure": "training curves (grokking)"},
        ),
    log:
        layout.log("plot_grokking", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(store_rule="modular"),
    params:
        code=code_of("scripts/plot_grokking.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_grokking.py"


rule plot_fourier_overlap:
    input:
        fourier=layout.pattern("table", name="fourier.csv"),
    output:
        pdf=layout.pattern("figure", name="fourier_overlap", ext="pdf"),
        png=report(
            layout.pattern("figure", name="fourier_overlap", ext="png"),
            caption="../report/fourier_overlap.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "Fourier overlap of decoder rows"},
        ),
    log:
        layout.log("plot_fourier_overlap", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(fourier=True),
    params:
        code=code_of("scripts/plot_fourier_overlap.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_fourier_overlap.py"
