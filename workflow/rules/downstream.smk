# Per-experiment analyses over all its SAEs: downstream loss of language-model SAEs (CE with the
# SAE's reconstruction spliced in) and latent co-activation.


rule downstream_loss:
    input:
        unpack(downstream_inputs),
    output:
        layout.pattern("downstream"),
    log:
        "results/logs/downstream_loss/{exp}.log",
    wildcard_constraints:
        exp=experiments_where(language_model=True),
    params:
        source=lambda w: EXPERIMENTS[w.exp]["source"],
        n_contexts=lambda w: EXPERIMENTS[w.exp]["downstream"]["n_contexts"],
        hooks=lambda w: hooks(w.exp),
        sae_keys=lambda w: sae_keys(w.exp),
        exclude_positions=lambda w: EXPERIMENTS[w.exp]["sae"]["exclude_positions"],
        exclude_norm_above=lambda w: EXPERIMENTS[w.exp]["sae"].get("exclude_norm_above"),
        device=DEVICE,
        code=code_of("scripts/downstream_loss.py"),
    threads: config["threads_per_job"]
    resources:
        mem_mb=downstream_mem_mb,
        runtime=downstream_runtime,
        gpu=GPU,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/downstream_loss.py"


rule coactivation:
    input:
        saes=lambda w: all_sae_dirs(w.exp),
        stores=lambda w: [store_path(w.exp, h) for h in hooks(w.exp)],
    output:
        table=report(
            layout.pattern("table", name="coactivation.csv"),
            caption="../report/coactivation.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "co-activation per SAE (CSV)"},
        ),
        pairs=layout.pattern("table", name="coactivation_pairs.csv"),
        overlap=layout.pattern("table", name="coactivation_partners.csv"),
        pdf=layout.pattern("figure", name="coactivation", ext="pdf"),
        png=report(
            layout.pattern("figure", name="coactivation", ext="png"),
            caption="../report/coactivation.rst",
            category="{exp}",
            subcategory="Figures",
            labels={"figure": "co-activation"},
        ),
    log:
        "results/logs/coactivation/{exp}.log",
    params:
        sae_keys=lambda w: sae_keys(w.exp),
        store_of=lambda w: {h: store_path(w.exp, h) for h in hooks(w.exp)},
        seed_pairs=lambda w: [(h, v, a, b) for h, v in hook_variants(w.exp) for a, b in seed_pairs(w.exp)],
        exclude_positions=lambda w: EXPERIMENTS[w.exp]["sae"]["exclude_positions"],
        exclude_norm_above=lambda w: EXPERIMENTS[w.exp]["sae"].get("exclude_norm_above"),
        options=lambda w: EXPERIMENTS[w.exp]["coactivation"],
        code=code_of("scripts/coactivation.py"),
    threads: 1
    resources:
        mem_mb=coactivation_mem_mb,
        runtime=coactivation_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/coactivation.py"
