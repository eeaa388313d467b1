# SAE checkpoints: one sae-lens folder per (experiment, hook, variant, seed). Every seed of a
# variant is trained in one job (one Python start and sae-lens import instead of one per
# seed); a seed trained before with the same spec, store, versions and code is restored from
# results/.trained/ instead of retrained, so adding a seed trains only the new one.
# Snakemake outputs cannot depend on the config through wildcards, so there is one such rule
# per experiment (its seed list), like the extraction rules.


for _exp in EXPERIMENTS:

    rule:
        name:
            rule_name("train_saes", _exp)
        input:
            store=lambda w: store_path(w.exp, w.hook),
        output:
            [directory(sae_dir("{exp}", "{hook}", "{variant}", s)) for s in seeds(_exp)],
        log:
            "results/logs/train_saes/{exp}/{hook}/{variant}.log",
        wildcard_constraints:
            exp=regex_of(_exp),
        params:
            specs=lambda w: [sae_spec_of(w.exp, w.variant, s) for s in seeds(w.exp)],
            # trainer checkpoints for resuming a killed job, and the finished SAEs kept for
            # reuse; outside the outputs, which Snakemake deletes before a job starts
            resume_dirs=lambda w: [f"results/.resume/{w.exp}/{w.hook}/{w.variant}/seed{s}" for s in seeds(w.exp)],
            trained_caches=lambda w: [f"results/.trained/{w.exp}/{w.hook}/{w.variant}/seed{s}" for s in seeds(w.exp)],
            code=code_of("scripts/train_saes.py"),
        threads: config["threads_per_job"]
        resources:
            mem_mb=train_sae_mem_mb,
            runtime=train_saes_runtime,
            gpu=GPU,
        conda:
            "../../envs/saesim.yaml"
        script:
            "../../scripts/train_saes.py"
