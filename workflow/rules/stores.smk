# Activation stores: one HDF5 file per (experiment, hook point).


# A toy experiment: sae_lens.synthetic samples (saesim.sources.synthetic) with their ground truth.
rule make_toy_store:
    output:
        layout.pattern("store", hook="toy"),
    log:
        layout.log("make_toy_store", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(store_rule="toy"),
    params:
        source=lambda w: plan.experiments[w.exp]["source"],
        store=lambda w: plan.experiments[w.exp]["store"],
        code=code_of("scripts/make_toy_store.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("make_toy_store"),
        runtime=plan.cost.runtime("make_toy_store"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/make_toy_store.py"
