# SAE checkpoints: one sae-lens folder per (experiment, hook, variant, seed), for the real
# stores, for their Gaussian twins (the trained null, results/{exp}/null/...) and for the
# random-weights model's stores (results/{exp}/randmodel/..., config model_null). Every seed
# of a variant is trained in one job (one Python start and sae-lens import instead of one per
# seed); a seed trained before with the same spec, store, versions and code is restored from
# results/.trained/ instead of retrained, so adding a seed trains only the new one.
# Snakemake outputs cannot depend on the config through wildcards, so there is one such rule
# per experiment (its seed list), like the extraction rules: train_saes_<exp>,
# train_null_saes_<exp> and train_randmodel_saes_<exp>.

_TRAIN_RULES = {"real": "train_saes", "null": "train_null_saes", "randmodel": "train_randmodel_saes"}

for _exp in plan.trained():
    for _null in plan.training_roles(_exp):  # a role: real, null, randmodel
        _train = _TRAIN_RULES[_null]
        if plan.experiments[_exp]["sae"]["train_jobs"] == "experiment":
            # one job for every hook, variant and seed (sae.train_jobs: experiment); the lists
            # are built here, at parse time, for this _exp (a lambda would see the last one)
            _saes = plan.experiment_training_saes(_exp, _null)

            rule:
                name:
                    planning.rule_name(_train, _exp)
                input:
                    stores=sorted({plan.store(e, h, _null) for e, h, _, _ in _saes}),
                output:
                    [directory(plan.sae(e, h, v, s, _null)) for e, h, v, s in _saes],
                log:
                    layout.log(_train, "exp", exp=_exp),
                params:
                    **plan.training_params(_saes, _null),
                    code=code_of("scripts/train_saes.py"),
                threads: config["threads_per_job"]
                resources:
                    mem_mb=plan.cost.mem_mb(_train, exp=_exp),
                    runtime=plan.cost.runtime(_train, exp=_exp),
                    gpu=plan.gpu,
                conda:
                    "../../envs/saesim.yaml"
                script:
                    "../../scripts/train_saes.py"

            continue

        rule:
            name:
                planning.rule_name(_train, _exp)
            input:
                store=plan.store_input(_null),
            output:
                [directory(plan.sae("{exp}", "{hook}", "{variant}", s, _null)) for s in plan.seeds(_exp, _null)],
            log:
                layout.log(_train, "variant"),
            wildcard_constraints:
                exp=planning.names_regex([_exp]),
            params:
                **plan.variant_training_params(_null),
                code=code_of("scripts/train_saes.py"),
            threads: config["threads_per_job"]
            resources:
                mem_mb=plan.cost.mem_mb(_train, exp=_exp),
                runtime=plan.cost.runtime(_train, exp=_exp),
                gpu=plan.gpu,
            # the language models' SAEs head the longest chains (SAEs -> downstream loss,
            # co-activation, suites, comparisons): start them before the small experiments'
            priority: 5 if planning.is_language(plan.experiments[_exp]) else 0
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/train_saes.py"
