# Feature pages (docs/feature-pages.md): for one seed pair of every (hook, variant) of an
# experiment and for every cell of its suites, matched latents of the two SAEs side by side as
# static HTML, and an index page.
# One job per experiment (one Python start for all its pages); like the training rules, one
# rule per experiment, because its outputs follow from the config: feature_pages_<exp>.


for _exp in [e for e in plan.experiments if plan.feature_pages_enabled(e)]:
    _jobs = plan.feature_page_jobs(_exp)

    rule:
        name:
            planning.rule_name("feature_pages", _exp)
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
                labels={"page": "index of the pages"},
            ),
            pages=[
                report(
                    j["out"],
                    caption="../report/feature_pages.rst",
                    category="Feature pages",
                    subcategory=_exp,
                    labels={"page": j["label"] if j["section"] == "seed pairs" else f"suite {j['label']}"},
                )
                for j in _jobs
            ],
        log:
            layout.log("feature_pages", "exp", exp=_exp),
        params:
            exp=_exp,
            jobs=_jobs,
            source=plan.experiments[_exp]["source"],
            options=plan.feature_page_options(_exp),
            memory_budget_mb=config["memory_budget_mb"],
            code=code_of("scripts/feature_pages.py"),
        threads: 1
        resources:
            mem_mb=plan.cost.mem_mb("feature_pages", exp=_exp),
            runtime=plan.cost.runtime("feature_pages", exp=_exp),
        conda:
            "../../envs/saesim.yaml"
        script:
            "../../scripts/feature_pages.py"
