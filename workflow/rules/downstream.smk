# Per-experiment analyses over all its SAEs: downstream loss of language-model SAEs (CE with the
# SAE's reconstruction spliced in) and latent co-activation.


rule downstream_loss:
    input:
        unpack(plan.downstream_inputs),
    output:
        layout.pattern("downstream"),
    log:
        layout.log("downstream_loss", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(language_model=True),
    params:
        source=lambda w: plan.experiments[w.exp]["source"],
        n_contexts=lambda w: plan.experiments[w.exp]["downstream"]["n_contexts"],
        hooks=lambda w: plan.hooks(w.exp),
        sae_keys=lambda w: plan.sae_keys(w.exp),
        exclude_positions=lambda w: plan.experiments[w.exp]["sae"]["exclude_positions"],
        exclude_norm_above=lambda w: plan.experiments[w.exp]["sae"].get("exclude_norm_above"),
        device=plan.device,
        code=code_of("scripts/downstream_loss.py"),
    threads: config["threads_per_job"]
    # the longest job after the language model's SAEs it reads: start it as soon as they are
    # trained, not after every shorter job (the 2026-12-06 run ended with it alone for 4 min)
    priority: 5
    resources:
        mem_mb=plan.cost.mem_mb("downstream_loss"),
        runtime=plan.cost.runtime("downstream_loss"),
        gpu=plan.gpu,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/downstream_loss.py"


rule coactivation:
    input:
        saes=lambda w: plan.saes(w.exp),
        stores=lambda w: [plan.store(w.exp, h) for h in plan.hooks(w.exp)],
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
        layout.log("coactivation", "exp"),
    params:
        sae_keys=lambda w: plan.sae_keys(w.exp),
        store_of=lambda w: {h: plan.store(w.exp, h) for h in plan.hooks(w.exp)},
        seed_pairs=lambda w: [(h, v, a, b) for h, v in plan.hook_variants(w.exp) for a, b in plan.seed_pairs(w.exp)],
        exclude_positions=lambda w: plan.experiments[w.exp]["sae"]["exclude_positions"],
        exclude_norm_above=lambda w: plan.experiments[w.exp]["sae"].get("exclude_norm_above"),
        options=lambda w: plan.experiments[w.exp]["coactivation"],
        code=code_of("scripts/coactivation.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("coactivation"),
        runtime=plan.cost.runtime("coactivation"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/coactivation.py"
