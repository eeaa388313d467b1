"""How much of each variant's agreement survives mean removal and whitening (rule plot_coordinate_spaces)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import os  # noqa: E402

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure  # noqa: E402
from saesim.report.figures_geometry import coordinate_spaces_figure, space_long_table  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    summary = pd.read_csv(smk.input.summary)
    long = space_long_table(summary)
    tmp = f"{smk.output.table}.partial"
    long.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, smk.output.table)
    save_figure(coordinate_spaces_figure(summary), smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
