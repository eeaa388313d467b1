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
        "results/logs/train_modular_model/{exp}.log",
    wildcard_constraints:
        exp=experiments_where(store_rule="modular"),
    params:
        model=lambda w: modular_model_config(w.exp),
        code=code_of("scripts/train_modular_model.py"),
    # heads of the longest chains (model -> stores -> SAEs -> pairs): start them first
    priority: 10
    threads: config["threads_per_job"]
    resources:
        mem_mb=train_modular_model_mem_mb,
        runtime=train_modular_model_runtime,
        gpu=GPU,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/train_modular_model.py"


for _exp in EXPERIMENTS:
    if source_kind(_exp).store_rule == "modular":

        rule:
            name:
                f"extract_modular_stores_{_exp.replace('-', '_')}"
            input:
                model=layout.path("model", ArtifactId(_exp)),
            output:
                [store_path(_exp, h) for h in hooks(_exp)],
            log:
                f"results/logs/extract_modular_stores/{_exp}.log",
            params:
                exp=_exp,
                hooks=hooks(_exp),
                store=EXPERIMENTS[_exp]["store"],
                key_rel_threshold=EXPERIMENTS[_exp]["source"]["key_rel_threshold"],
                code=code_of("scripts/extract_modular_stores.py"),
            priority: 10
            threads: 1
            resources:
                mem_mb=extract_modular_mem_mb(_exp),
                runtime=extract_modular_runtime(_exp),
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/extract_modular_stores.py"


rule build_corpus:
    output:
        corpus=layout.pattern("corpus"),
        junk=layout.pattern("junk_tokens"),
    log:
        "results/logs/build_corpus/{exp}.log",
    wildcard_constraints:
        exp=experiments_where(store_rule="language"),
    params:
        source=lambda w: EXPERIMENTS[w.exp]["source"],
        code=code_of("scripts/build_corpus.py"),
    priority: 10
    threads: 1
    resources:
        mem_mb=build_corpus_mem_mb,
        runtime=build_corpus_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/build_corpus.py"


for _exp in EXPERIMENTS:
    if source_kind(_exp).store_rule == "language":

        rule:
            name:
                f"extract_activations_{_exp.replace('-', '_')}"
            input:
                corpus=layout.path("corpus", ArtifactId(_exp)),
            output:
                [store_path(_exp, h) for h in hooks(_exp)],
            log:
                f"results/logs/extract_activations/{_exp}.log",
            params:
                exp=_exp,
                hooks=hooks(_exp),
                source=EXPERIMENTS[_exp]["source"],
                store=EXPERIMENTS[_exp]["store"],
                device=DEVICE,
                code=code_of("scripts/extract_activations.py"),
            priority: 10
            threads: config["threads_per_job"]
            resources:
                mem_mb=extract_mem_mb(_exp),
                runtime=extract_runtime(_exp),
                gpu=GPU,
            conda:
                "../../envs/saesim.yaml"
            script:
                "../../scripts/extract_activations.py"


rule fourier_overlap:
    input:
        sae=layout.pattern("sae"),
        store=lambda w: store_path(w.exp, w.hook),
    output:
        layout.pattern("fourier"),
    log:
        "results/logs/fourier_overlap/{exp}/{hook}/{variant}/seed{seed}.log",
    wildcard_constraints:
        exp=experiments_where(fourier=True),
        seed=r"\d+",
    params:
        identity=job_identity(),
        code=code_of("scripts/fourier_overlap.py"),
    threads: 1
    resources:
        mem_mb=sae_eval_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/fourier_overlap.py"


rule fourier_table:
    input:
        real=lambda w: all_fourier_files(w.exp),
        null=lambda w: all_null_fourier_files(w.exp),
    output:
        report(
            layout.pattern("table", name="fourier.csv"),
            caption="../report/fourier_table.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "Fourier overlap per SAE (CSV)"},
        ),
    log:
        "results/logs/fourier_table/{exp}.log",
    wildcard_constraints:
        exp=experiments_where(fourier=True),
    params:
        code=code_of("scripts/fourier_table.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/fourier_table.py"
