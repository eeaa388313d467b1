# The random-weights model null (config `model_null:` per experiment; Heap et al., ICLR 2026):
# the experiment's model with its weights re-initialised (saesim.sources.random_model), its
# activations extracted over the same inputs into stores of their own, the chosen variants
# trained on them with the same recipe and seeds, their seed pairs compared exactly like the
# real ones. Everything lives under results/{exp}/randmodel/ in the same layout as the real
# artifacts; the SAEs are trained by rules train_randmodel_saes_<exp> (saes.smk), the pairs by
# the real rule (`use rule`) with other inputs and outputs.


for _exp in plan.trained():
    if plan.randmodel_enabled(_exp):

        rule:
            name:
                planning.rule_name("extract_randmodel_stores", _exp)
            input:
                **plan.randmodel_inputs(_exp),
            output:
                [plan.store(_exp, h, "randmodel") for h in plan.randmodel_hooks(_exp)],
            log:
                layout.log("extract_randmodel_stores", "exp", exp=_exp),
            params:
                **plan.randmodel_params(_exp),
                code=code_of("scripts/extract_randmodel_stores.py"),
            priority: 10
            threads: config["threads_per_job"]
            resources:
                mem_mb=plan.cost.mem_mb("extract_randmodel_stores", exp=_exp),
                runtime=plan.cost.runtime("extract_randmodel_stores", exp=_exp),
                gpu=plan.gpu,
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/extract_randmodel_stores.py"


# random-model SAEs: rules train_randmodel_saes_<exp> in saes.smk


use rule compare_seed_pair as compare_randmodel_seed_pair with:
    input:
        a=layout.pattern("sae", "randmodel", seed="{a}"),
        b=layout.pattern("sae", "randmodel", seed="{b}"),
        # the random model's own store: its activations have moments of their own
        moments=plan.store_input("randmodel"),
    output:
        layout.pattern("pair", "randmodel"),
    log:
        layout.log("compare_randmodel_seed_pair", "pair"),
    params:
        identity=planning.job_identity("randmodel"),
