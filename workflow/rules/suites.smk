# SAE suites: imported SAEs (source kind saes) and cross-variant decoder matrices (config suites).
# One job per imported SAE (its identity), one per pair of suite members (a cell, cached on its
# own), then the suite's table and figures.


rule import_sae:
    input:
        unpack(plan.imported_inputs),
    output:
        layout.pattern("imported"),
    log:
        layout.log("import_sae", "label"),
    wildcard_constraints:
        exp=plan.experiments_where(trains_saes=False),
        label=suite_runs.LABEL_PATTERN,
    params:
        item=lambda w: plan.imported[w.exp][w.label],
        eval_rows=lambda w: plan.experiments[w.exp]["source"]["eval_rows"],
        exclude_positions=lambda w: plan.experiments[w.exp]["source"]["exclude_positions"],
        code=code_of("scripts/import_sae.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("import_sae"),
        runtime=plan.cost.runtime("import_sae"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/import_sae.py"


rule imported_saes_table:
    input:
        lambda w: [plan.imported_identity_file(w.exp, label) for label in plan.imported[w.exp]],
    output:
        report(
            layout.pattern("table", name="imported_saes.csv"),
            caption="../report/imported_saes.rst",
            category="{exp}",
            subcategory="Tables",
            labels={"table": "imported SAEs (CSV)"},
        ),
    log:
        layout.log("imported_saes_table", "exp"),
    wildcard_constraints:
        exp=plan.experiments_where(trains_saes=False),
    params:
        code=code_of("scripts/imported_saes_table.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/imported_saes_table.py"


rule suite_cell:
    input:
        unpack(plan.suite_cell_inputs),
    output:
        layout.pattern("suite_cell", member_a="{a}", member_b="{b}"),
    log:
        layout.log("suite_cell", "cell"),
    wildcard_constraints:
        suite=layout.FIELD_PATTERNS["suite"],
        a=suite_runs.LABEL_PATTERN,
        b=suite_runs.LABEL_PATTERN,
    params:
        cell=plan.suite_cell_params,
        code=code_of("scripts/suite_cell.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("suite_cell"),
        runtime=plan.cost.runtime("suite_cell"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/suite_cell.py"


rule suite_matrix:
    input:
        lambda w: plan.suite_cell_files(w.suite),
    output:
        report(
            layout.pattern("suite_matrix"),
            caption="../report/suite_table.rst",
            category="Suites",
            subcategory="{suite}",
            labels={"result": "matrix table (CSV)"},
        ),
    log:
        layout.log("suite_matrix", "suite"),
    wildcard_constraints:
        suite=layout.FIELD_PATTERNS["suite"],
    params:
        members=lambda w: list(plan.suite_members(w.suite)),
        code=code_of("scripts/suite_matrix.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/suite_matrix.py"


rule plot_suite_matrix:
    input:
        layout.pattern("suite_matrix"),
    output:
        pdf=layout.pattern("suite_figure", name="matrix", ext="pdf"),
        png=report(
            layout.pattern("suite_figure", name="matrix", ext="png"),
            caption="../report/suite_matrix.rst",
            category="Suites",
            subcategory="{suite}",
            labels={"result": "cross-variant matrix"},
        ),
    log:
        layout.log("plot_suite_matrix", "suite"),
    wildcard_constraints:
        suite=layout.FIELD_PATTERNS["suite"],
    params:
        members=lambda w: list(plan.suite_members(w.suite)),
        code=code_of("scripts/plot_suite_matrix.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_suite_matrix.py"


rule plot_suite_splitting:
    input:
        lambda w: plan.suite_cell_files(w.suite),
    output:
        pdf=layout.pattern("suite_figure", name="splitting", ext="pdf"),
        png=report(
            layout.pattern("suite_figure", name="splitting", ext="png"),
            caption="../report/suite_splitting.rst",
            category="Suites",
            subcategory="{suite}",
            labels={"result": "feature splitting"},
        ),
    log:
        layout.log("plot_suite_splitting", "suite"),
    wildcard_constraints:
        suite=layout.FIELD_PATTERNS["suite"],
    params:
        code=code_of("scripts/plot_suite_splitting.py"),
    threads: 1
    resources:
        mem_mb=plan.cost.mem_mb("table"),
        runtime=plan.cost.runtime("table"),
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_suite_splitting.py"
