# Figures: each is its own target, results/figures/<experiment>_<name>.{pdf,png}.


rule plot_stability_vs_l0:
    input:
        stability="results/{exp}/tables/stability.csv",
        pairs="results/{exp}/tables/pairs.csv",
    output:
        pdf="results/figures/{exp}_stability_vs_l0.pdf",
        png=report(
            "results/figures/{exp}_stability_vs_l0.png",
            caption="../report/stability_vs_l0.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "stability vs L0"},
        ),
    log:
        "results/logs/plot_stability_vs_l0/{exp}.log",
    params:
        true_l0=lambda w: expected_l0(EXPERIMENTS[w.exp]["source"]),
        code=code_of("scripts/plot_stability_vs_l0.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_stability_vs_l0.py"


rule plot_pwmcc_vs_gtmcc:
    input:
        stability="results/{exp}/tables/stability.csv",
    output:
        pdf="results/figures/{exp}_pwmcc_vs_gtmcc.pdf",
        png=report(
            "results/figures/{exp}_pwmcc_vs_gtmcc.png",
            caption="../report/pwmcc_vs_gtmcc.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "PW-MCC vs GT-MCC"},
        ),
        json="results/{exp}/ground_truth/pwmcc_vs_gtmcc.json",
    log:
        "results/logs/plot_pwmcc_vs_gtmcc/{exp}.log",
    params:
        code=code_of("scripts/plot_pwmcc_vs_gtmcc.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_pwmcc_vs_gtmcc.py"


rule plot_recovery_vs_l0:
    input:
        stability="results/{exp}/tables/stability.csv",
        saes="results/{exp}/tables/saes.csv",
    output:
        pdf="results/figures/{exp}_recovery_vs_l0.pdf",
        png=report(
            "results/figures/{exp}_recovery_vs_l0.png",
            caption="../report/recovery_vs_l0.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "ground-truth recovery vs L0"},
        ),
    log:
        "results/logs/plot_recovery_vs_l0/{exp}.log",
    params:
        true_l0=lambda w: expected_l0(EXPERIMENTS[w.exp]["source"]),
        code=code_of("scripts/plot_recovery_vs_l0.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_recovery_vs_l0.py"


rule plot_seed_heatmap:
    input:
        pairs="results/{exp}/tables/pairs.csv",
        stability="results/{exp}/tables/stability.csv",
    output:
        pdf="results/figures/{exp}_seed_heatmap.pdf",
        png=report(
            "results/figures/{exp}_seed_heatmap.png",
            caption="../report/seed_heatmap.rst",
            category="{exp}",
            subcategory="Stability",
            labels={"figure": "seed x seed similarity"},
        ),
    log:
        "results/logs/plot_seed_heatmap/{exp}.log",
    params:
        code=code_of("scripts/plot_seed_heatmap.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_seed_heatmap.py"


rule plot_latent_vs_truth:
    input:
        saes=truth_heatmap_saes,
        store=lambda w: store_path(w.exp, "toy"),
    output:
        pdf="results/figures/{exp}_latent_vs_truth.pdf",
        png=report(
            "results/figures/{exp}_latent_vs_truth.png",
            caption="../report/latent_vs_truth.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "latent x true feature cosines"},
        ),
    log:
        "results/logs/plot_latent_vs_truth/{exp}.log",
    params:
        true_l0=lambda w: expected_l0(EXPERIMENTS[w.exp]["source"]),
        code=code_of("scripts/plot_latent_vs_truth.py"),
    threads: 1
    resources:
        mem_mb=plot_latent_vs_truth_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_latent_vs_truth.py"


rule plot_grokking:
    input:
        model="results/{exp}/model",
    output:
        pdf="results/figures/{exp}_grokking.pdf",
        png=report(
            "results/figures/{exp}_grokking.png",
            caption="../report/grokking.rst",
            category="{exp}",
            subcategory="Model",
            labels={"figure": "training curves (grokking)"},
        ),
    log:
        "results/logs/plot_grokking/{exp}.log",
    wildcard_constraints:
        exp=experiments_of_kind("modular"),
    params:
        code=code_of("scripts/plot_grokking.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_grokking.py"


rule plot_fourier_overlap:
    input:
        fourier="results/{exp}/tables/fourier.csv",
    output:
        pdf="results/figures/{exp}_fourier_overlap.pdf",
        png=report(
            "results/figures/{exp}_fourier_overlap.png",
            caption="../report/fourier_overlap.rst",
            category="{exp}",
            subcategory="Ground truth",
            labels={"figure": "Fourier overlap of decoder rows"},
        ),
    log:
        "results/logs/plot_fourier_overlap/{exp}.log",
    wildcard_constraints:
        exp=experiments_of_kind("modular"),
    params:
        code=code_of("scripts/plot_fourier_overlap.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_fourier_overlap.py"
