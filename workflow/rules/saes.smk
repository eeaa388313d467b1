# SAE checkpoints: one sae-lens folder per (experiment, hook, variant, seed), for the real
# stores and for their Gaussian twins (the trained null, results/{exp}/null/...). Every seed
# of a variant is trained in one job (one Python start and sae-lens import instead of one per
# seed); a seed trained before with the same spec, store, versions and code is restored from
# results/.trained/ instead of retrained, so adding a seed trains only the new one.
# Snakemake outputs cannot depend on the config through wildcards, so there is one such rule
# per experiment (its seed list), like the extraction rules: train_saes_<exp> and
# train_null_saes_<exp>.


for _exp in [e for e in EXPERIMENTS if not is_imported(e)]:
    for _null in (False, True) if null_enabled(_exp) else (False,):

        rule:
            name:
                rule_name("train_null_saes" if _null else "train_saes", _exp)
            input:
                store=(lambda w: null_store_path(w.exp, w.hook)) if _null else (lambda w: store_path(w.exp, w.hook)),
            output:
                [directory(trained_sae_dir("{exp}", "{hook}", "{variant}", s, _null)) for s in sae_seeds(_exp, _null)],
            log:
                f"results/logs/{'train_null_saes' if _null else 'train_saes'}/{{exp}}/{{hook}}/{{variant}}.log",
            wildcard_constraints:
                exp=regex_of(_exp),
            params:
                specs=sae_specs_of(_null),
                # trainer checkpoints for resuming a killed job, and the finished SAEs kept for
                # reuse; outside the outputs, which Snakemake deletes before a job starts
                resume_dirs=side_dirs_of("resume", _null),
                trained_caches=side_dirs_of("trained_cache", _null),
                identities=sae_identities_of(_null),
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
