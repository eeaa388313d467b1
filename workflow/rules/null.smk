# The trained "no-feature" null (config `null:` per experiment): a Gaussian twin of every
# store with the same mean and covariance, SAEs trained on it with the same recipe, their
# seed pairs compared exactly like the real ones. Everything lives under results/{exp}/null/
# in the same layout as the real artifacts; the pair, ground-truth and Fourier
# rules are the real ones (`use rule`), with other inputs and outputs; the SAEs are trained
# by rules train_null_saes_<exp> (saes.smk).


rule make_null_store:
    input:
        store=lambda w: plan.store(w.exp, w.hook),
    output:
        layout.pattern("store", "null"),
    log:
        layout.log("make_null_store", "hook"),
    params:
        exclude_positions=lambda w: list(plan.experiments[w.exp]["sae"].get("exclude_positions", [])),
        exclude_norm_above=lambda w: plan.experiments[w.exp]["sae"].get("exclude_norm_above"),
        seed=lambda w: plan.experiments[w.exp]["null"]["store_seed"],
        code=code_of("scripts/make_null_store.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("make_null_store"),
        runtime=plan.cost.runtime("make_null_store"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/make_null_store.py"


# null SAEs: rules train_null_saes_<exp> in saes.smk


use rule compare_seed_pair as compare_null_seed_pair with:
    input:
        a=layout.pattern("sae", "null", seed="{a}"),
        b=layout.pattern("sae", "null", seed="{b}"),
        # the real store's coordinate systems (its Gaussian twin has the same moments)
        moments=lambda w: plan.moments_source(w.exp, w.hook),
    output:
        layout.pattern("pair", "null"),
    log:
        layout.log("compare_null_seed_pair", "pair"),
    params:
        identity=planning.job_identity("null"),


# ground truth of null SAEs: against the real store's (null stores have none)
use rule ground_truth_recovery as null_ground_truth_recovery with:
    input:
        sae=layout.pattern("sae", "null"),
        store=lambda w: plan.store(w.exp, w.hook),
    output:
        layout.pattern("ground_truth", "null"),
    log:
        layout.log("null_ground_truth_recovery", "sae"),
    params:
        identity=planning.job_identity("null"),


use rule fourier_overlap as null_fourier_overlap with:
    input:
        sae=layout.pattern("sae", "null"),
        store=lambda w: plan.store(w.exp, w.hook),
    output:
        layout.pattern("fourier", "null"),
    log:
        layout.log("null_fourier_overlap", "sae"),
    params:
        identity=planning.job_identity("null"),
