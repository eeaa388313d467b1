# Per-latent stability (docs/per-latent.md): one job per experiment (one Python start and
# sae-lens import for all its SAEs), one table per SAE (real and null), per-variant tables
# with intervals, and one figure. Rules are generated per experiment: the outputs list every SAE.


def per_latent_enabled(exp):
    return config["per_latent"]["enabled"] and not is_imported(exp) and len(seeds(exp)) >= 2


def per_latent_saes(exp):
    """Every SAE of an experiment the per-latent job reads: real, then null (where enabled)."""
    out = []
    for null in (False, True):
        if null and not (null_enabled(exp) and len(null_seeds(exp)) >= 2):  # one null seed: no null pairs
            continue
        for h, v in hook_variants(exp):
            for s in sae_seeds(exp, null):
                ident = ArtifactId(exp, h, v, (s,), role_of(null))
                out.append({
                    "hook": h, "variant": v, "seed": s, "role": role_of(null),
                    "path": trained_sae_dir(exp, h, v, s, null),
                    "store": null_store_path(exp, h) if null else store_path(exp, h),
                    "spec": sae_spec_of(exp, v, s),
                    "identity": ident.to_dict(),
                })
    return out


def per_latent_files(exp):
    """The experiment's per-latent tables and figure (targets of the default run)."""
    if not per_latent_enabled(exp):
        return []
    return [
        layout.path("table", ArtifactId(exp), name="per_latent.csv"),
        *(layout.path("figure", ArtifactId(exp), name="per_latent", ext=e) for e in ("pdf", "png")),
    ]


for _exp in EXPERIMENTS:
    if not per_latent_enabled(_exp):
        continue
    _saes = per_latent_saes(_exp)

    rule:
        name:
            rule_name("per_latent", _exp)
        input:
            saes=[s["path"] for s in _saes],
            stores=sorted({s["store"] for s in _saes}),
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
            f"results/logs/per_latent/{_exp}.log",
        params:
            exp=_exp,
            saes=_saes,
            options=config["per_latent"],
            memory_budget_mb=config["memory_budget_mb"],
            code=code_of("scripts/per_latent.py"),
        threads: 1
        resources:
            mem_mb=per_latent_mem_mb(_exp),
            runtime=per_latent_runtime(_exp),
        conda:
            "../../envs/saesim.yaml"
        script:
            "../../scripts/per_latent.py"
