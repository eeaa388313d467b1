# Decoder agreement in raw, mean-removed and whitened coordinates (docs/geometry.md): the
# pair and baseline rules measure every space; this figure reads them off results/summary.csv.


rule plot_coordinate_spaces:
    input:
        summary=layout.path("summary", ext="csv"),
    output:
        table=report(
            layout.path("summary_table", name="coordinate_spaces"),
            caption="../report/coordinate_spaces.rst",
            category="Summary",
            subcategory="Coordinate systems",
            labels={"table": "agreement per coordinate system (CSV)"},
        ),
        pdf=layout.path("summary_figure", name="coordinate_spaces", ext="pdf"),
        png=report(
            layout.path("summary_figure", name="coordinate_spaces", ext="png"),
            caption="../report/coordinate_spaces.rst",
            category="Summary",
            subcategory="Coordinate systems",
            labels={"figure": "agreement that survives whitening"},
        ),
    log:
        "results/logs/plot_coordinate_spaces/summary.log",
    params:
        code=code_of("scripts/plot_coordinate_spaces.py"),
    threads: 1
    resources:
        mem_mb=table_mem_mb,
        runtime=short_runtime,
    conda:
        "../../envs/saesim.yaml"
    script:
        "../../scripts/plot_coordinate_spaces.py"
