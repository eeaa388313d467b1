# Per-latent stability (docs/per-latent.md): one job per experiment (one Python start and
# sae-lens import for all its SAEs), one table per SAE (real and null), per-variant tables
# with intervals, and one figure. Rules are generated per experiment: the outputs list every SAE.


for _exp in [e for e in plan.experiments if plan.per_latent_enabled(e)]:
    _saes = plan.per_latent_saes(_exp)

    rule:
        name:
            planning.rule_name("per_latent", _exp)
        input:
            saes=[s["path"] for s in _saes],
            stores=sorted({s["store"] for s in _saes}),
            moments=sorted({s["moments"] for s in _saes}),
        output:
            saes=[layout.path("per_latent", ArtifactId.from_dict(s["identity"])) for s in _saes],
            table=report(
                layout.path("table", ArtifactId(_exp), name="per_latent.csv"),
                caption="../report/per_latent_table.rst",
                category=_exp,
                subcategory="Tables",
                labels={"table": "per-latent stability per variant (CSV)"},
            ),
            saes_table=layout.path("table", ArtifactId(_exp), name="per_latent_saes.csv"),
            pairs_table=layout.path("table", ArtifactId(_exp), name="per_latent_pairs.csv"),
            pdf=layout.path("figure", ArtifactId(_exp), name="per_latent", ext="pdf"),
            png=report(
                layout.path("figure", ArtifactId(_exp), name="per_latent", ext="png"),
                caption="../report/per_latent.rst",
                category=_exp,
                subcategory="Figures",
                labels={"figure": "per-latent stability"},
            ),
        log:
            layout.log("per_latent", "exp", exp=_exp),
        params:
            exp=_exp,
            saes=_saes,
            options=config["per_latent"],
            memory_budget_mb=config["memory_budget_mb"],
            code=code_of("scripts/per_latent.py"),
        threads: 1
        resources:
            mem_mb=plan.cost.mem_mb("per_latent", exp=_exp),
            runtime=plan.cost.runtime("per_latent", exp=_exp),
        conda:
            "../../envs/saesim.yaml"
        script:
            "../../scripts/per_latent.py"
