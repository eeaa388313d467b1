# Feature pages (docs/feature-pages.md): for one seed pair of every (hook, variant) of an
# experiment, matched latents of the two seeds side by side as static HTML, and an index page.
# One job per experiment (one Python start for all its pages); like the training rules, one
# rule per experiment, because its outputs follow from the config: feature_pages_<exp>.


for _exp in [e for e in EXPERIMENTS if feature_pages_enabled(e)]:
    _jobs = feature_page_jobs(_exp)
    _lm = planning.is_language(EXPERIMENTS[_exp])

    rule:
        name:
            rule_name("feature_pages", _exp)
        input:
            unpack(
                lambda w, _jobs=_jobs: {
                    "saes": sorted({j[k] for j in _jobs for k in ("sae_a", "sae_b")}),
                    "stores": sorted({j["store"] for j in _jobs}),
                }
            ),
        output:
            index=report(
                layout.path("feature_index", ArtifactId(_exp)),
                caption="../report/feature_pages.rst",
                category="Feature pages",
                subcategory=_exp,
                labels={"page": "index of the seed pairs"},
            ),
            pages=[
                report(
                    j["out"],
                    caption="../report/feature_pages.rst",
                    category="Feature pages",
                    subcategory=_exp,
                    labels={"page": f"{j['hook']} {j['variant']} seed{j['a']}-seed{j['b']}"},
                )
                for j in _jobs
            ],
        log:
            f"results/logs/feature_pages/{_exp}.log",
        params:
            exp=_exp,
            jobs=_jobs,
            source=EXPERIMENTS[_exp]["source"],
            options={
                **{k: v for k, v in config["feature_pages"].items() if k != "enabled"},
                "kind": "language" if _lm else source_kind(_exp).name,  # plain data: params are unpickled before the script puts its src on sys.path
                "exclude_positions": list(EXPERIMENTS[_exp]["sae"].get("exclude_positions", [])),
                "exclude_norm_above": EXPERIMENTS[_exp]["sae"].get("exclude_norm_above"),
            },
            memory_budget_mb=config["memory_budget_mb"],
            code=code_of("scripts/feature_pages.py"),
        threads: 1
        resources:
            mem_mb=2000,
            runtime=short_runtime,
        conda:
            "../../envs/saesim.yaml"
        script:
            "../../scripts/feature_pages.py"
