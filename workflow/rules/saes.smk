# SAE checkpoints: one sae-lens folder per (experiment, hook, variant, seed).


rule train_sae:
    input:
        store=lambda w: store_path(w.exp, w.hook),
    output:
        directory("results/{exp}/saes/{hook}/{variant}/seed{seed}"),
    log:
        "results/logs/train_sae/{exp}/{hook}/{variant}/seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    params:
        spec=sae_spec,
        # trainer checkpoints for resuming a killed job; outside the output,
        # which Snakemake deletes before a job starts
        resume_dir=lambda w: f"results/.resume/{w.exp}/{w.hook}/{w.variant}/seed{w.seed}",
        code=code_of("scripts/train_sae.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=train_sae_mem_mb,
        runtime=train_sae_runtime,
        gpu=GPU,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/train_sae.py"
