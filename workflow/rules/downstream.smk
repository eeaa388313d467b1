# Downstream loss of language-model SAEs: CE with the SAE's reconstruction spliced in.


def downstream_inputs(wildcards):
    exp = wildcards.exp
    return {
        "corpus": f"results/{exp}/corpus.npz",
        "stores": [store_path(exp, h) for h in hooks(exp)],
        "saes": [sae_dir(exp, h, v, s) for h, v in hook_variants(exp) for s in seeds(exp)],
    }


def downstream_keys(exp):
    """``hook/variant/seed<s>`` of every SAE of a language-model experiment (order of the saes input)."""
    return [f"{h}/{v}/seed{s}" for h, v in hook_variants(exp) for s in seeds(exp)]


rule downstream_loss:
    input:
        unpack(downstream_inputs),
    output:
        "results/{exp}/downstream.json",
    log:
        "results/logs/downstream_loss/{exp}.log",
    wildcard_constraints:
        exp=experiments_of_kind(*LANGUAGE_KINDS),
    params:
        source=lambda w: EXPERIMENTS[w.exp]["source"],
        n_contexts=lambda w: EXPERIMENTS[w.exp]["downstream"]["n_contexts"],
        hooks=lambda w: hooks(w.exp),
        sae_keys=lambda w: downstream_keys(w.exp),
        exclude_positions=lambda w: EXPERIMENTS[w.exp]["sae"]["exclude_positions"],
        exclude_norm_above=lambda w: EXPERIMENTS[w.exp]["sae"].get("exclude_norm_above"),
        device=DEVICE,
        code=code("downstream", "corpus", "training", "activation_store", "models/language"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=downstream_mem_mb,
        runtime=downstream_runtime,
        gpu=GPU,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/downstream_loss.py"
