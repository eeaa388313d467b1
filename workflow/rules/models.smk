# Real models into activation stores: the modular-addition transformer (trained here)
# and pretrained language models (SmolLM2 offline, Hugging Face / TransformerLens online).
#
# One extraction job writes the stores of all hooks of one model in one forward pass.
# Snakemake outputs cannot depend on the config through wildcards, so these rules are
# declared once per experiment.


rule train_modular_model:
    output:
        directory(layout.pattern("model")),
    log:
        layout.log("train_modular_model", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(store_rule="modular"),
    params:
        model=lambda w: plan.modular_model_config(w.exp),
        code=code_of("scripts/train_modular_model.py"),
    # heads of the longest chains (model -> stores -> SAEs -> pairs): start them first
    priority: 10
    threads: config["threads_per_job"]
    resources:
        mem_mb=plan.cost.mem_mb("train_modular_model"),
        runtime=plan.cost.runtime("train_modular_model"),
        gpu=plan.gpu,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/train_modular_model.py"


for _exp in plan.experiments:
    if plan.source_kind(_exp).store_rule == "modular":

        rule:
            name:
                planning.rule_name("extract_modular_stores", _exp)
            input:
                model=layout.path("model", ArtifactId(_exp)),
            output:
                [plan.store(_exp, h) for h in plan.hooks(_exp)],
            log:
                layout.log("extract_modular_stores", "exp", exp=_exp),
            params:
                exp=_exp,
                hooks=plan.hooks(_exp),
                store=plan.experiments[_exp]["store"],
                key_rel_threshold=plan.experiments[_exp]["source"]["key_rel_threshold"],
                code=code_of("scripts/extract_modular_stores.py"),
            priority: 10
            threads: 1
            resources:
                mem_mb=plan.cost.mem_mb("extract_modular_stores", exp=_exp),
                runtime=plan.cost.runtime("extract_modular_stores", exp=_exp),
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/extract_modular_stores.py"


rule build_corpus:
    output:
        corpus=layout.pattern("corpus"),
        junk=layout.pattern("junk_tokens"),
    log:
        layout.log("build_corpus", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(store_rule="language"),
    params:
        source=lambda w: plan.experiments[w.exp]["source"],
        code=code_of("scripts/build_corpus.py"),
    priority: 10
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("build_corpus"),
        runtime=plan.cost.runtime("build_corpus"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/build_corpus.py"


for _exp in plan.experiments:
    if plan.source_kind(_exp).store_rule == "language":

        rule:
            name:
                planning.rule_name("extract_activations", _exp)
            input:
                corpus=layout.path("corpus", ArtifactId(_exp)),
            output:
                [plan.store(_exp, h) for h in plan.hooks(_exp)],
            log:
                layout.log("extract_activations", "exp", exp=_exp),
            params:
                exp=_exp,
                hooks=plan.hooks(_exp),
                source=plan.experiments[_exp]["source"],
                store=plan.experiments[_exp]["store"],
                device=plan.device,
                code=code_of("scripts/extract_activations.py"),
            priority: 10
            threads: config["threads_per_job"]
            resources:
                mem_mb=plan.cost.mem_mb("extract_activations", exp=_exp),
                runtime=plan.cost.runtime("extract_activations", exp=_exp),
                gpu=plan.gpu,
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/extract_activations.py"


rule fourier_overlap:
    input:
        sae=layout.pattern("sae"),
        store=lambda w: plan.store(w.exp, w.hook),
    output:
        layout.pattern("fourier"),
    log:
        layout.log("fourier_overlap", "sae"),
    wildcard_constraints:
        exp=plan.experiments_where(fourier=True),
        seed=r"\d+",
    params:
        identity=planning.job_identity(),
        code=code_of("scripts/fourier_overlap.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("fourier_overlap"),
        runtime=plan.cost.runtime("fourier_overlap"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/fourier_overlap.py"


rule fourier_table:
    input:
        real=lambda w: plan.fourier_files(w.exp),
        null=lambda w: plan.fourier_files(w.exp, null=True),
    output:
        report(
            layout.pattern("table", name="fourier.csv"),
            caption="../report/fourier_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "Fourier overlap per SAE (CSV)"},
        ),
    log:
        layout.log("fourier_table", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(fourier=True),
    params:
        code=code_of("scripts/fourier_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/fourier_table.py"
