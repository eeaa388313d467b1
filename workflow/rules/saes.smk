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
        _train = "train_null_saes" if _null else "train_saes"
        if EXPERIMENTS[_exp]["sae"]["train_jobs"] == "experiment":
            # one job for every hook, variant and seed (sae.train_jobs: experiment); the lists
            # are built here, at parse time, for this _exp (a lambda would see the last one)
            _saes = [(h, v, s) for h, v in hook_variants(_exp) for s in sae_seeds(_exp, _null)]
            _store = null_store_path if _null else store_path

            rule:
                name:
                    rule_name(_train, _exp)
                input:
                    stores=sorted({_store(_exp, h) for h, _, _ in _saes}),
                output:
                    [directory(trained_sae_dir(_exp, h, v, s, _null)) for h, v, s in _saes],
                log:
                    f"results/logs/{_train}/{_exp}.log",
                params:
                    specs=[sae_spec_of(_exp, v, s) for h, v, s in _saes],
                    stores=[_store(_exp, h) for h, _, _ in _saes],
                    resume_dirs=[side_dir("resume", _exp, h, v, s, _null) for h, v, s in _saes],
                    trained_caches=[side_dir("trained_cache", _exp, h, v, s, _null) for h, v, s in _saes],
                    identities=[ArtifactId(_exp, h, v, (s,), role_of(_null)).to_dict() for h, v, s in _saes],
                    snapshots=[snapshot_fractions(_exp, h, v) for h, v, s in _saes],
                    code=code_of("scripts/train_saes.py"),
                threads: config["threads_per_job"]
                resources:
                    mem_mb=train_experiment_mem_mb(_exp),
                    runtime=train_experiment_runtime(_exp, _null),
                    gpu=GPU,
                conda:
                    "../../envs/saesim.yaml"
                script:
                    "../../scripts/train_saes.py"

            continue

        rule:
            name:
                rule_name(_train, _exp)
            input:
                store=(lambda w: null_store_path(w.exp, w.hook)) if _null else (lambda w: store_path(w.exp, w.hook)),
            output:
                [directory(trained_sae_dir("{exp}", "{hook}", "{variant}", s, _null)) for s in sae_seeds(_exp, _null)],
            log:
                f"results/logs/{_train}/{{exp}}/{{hook}}/{{variant}}.log",
            wildcard_constraints:
                exp=regex_of(_exp),
            params:
                specs=sae_specs_of(_null),
                stores=(
                    (lambda w: [null_store_path(w.exp, w.hook)] * len(null_seeds(w.exp)))
                    if _null
                    else (lambda w: [store_path(w.exp, w.hook)] * len(seeds(w.exp)))
                ),
                # trainer checkpoints for resuming a killed job, and the finished SAEs kept for
                # reuse; outside the outputs, which Snakemake deletes before a job starts
                resume_dirs=side_dirs_of("resume", _null),
                trained_caches=side_dirs_of("trained_cache", _null),
                identities=sae_identities_of(_null),
                # training snapshots (convergence variant only; read by rule convergence)
                snapshots=snapshots_of(_null),
                code=code_of("scripts/train_saes.py"),
            threads: config["threads_per_job"]
            resources:
                mem_mb=train_sae_mem_mb,
                runtime=train_saes_runtime,
                gpu=GPU,
            # the language models' SAEs head the longest chains (SAEs -> downstream loss,
            # co-activation, suites, comparisons): start them before the small experiments'
            priority: 5 if EXPERIMENTS[_exp]["source"]["kind"] in LANGUAGE_KINDS else 0
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/train_saes.py"
