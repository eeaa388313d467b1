"""How much of each variant's agreement survives mean removal and whitening (rule plot_coordinate_spaces)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821


import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure  # noqa: E402
from saesim.report.figures_geometry import coordinate_spaces_figure, space_long_table  # noqa: E402
from saesim.workflow.rulekit import run, write_csv_atomic  # noqa: E402


def main(smk):
    summary = pd.read_csv(smk.input.summary)
    long = space_long_table(summary)
    write_csv_atomic(long, smk.output.table)
    save_figure(coordinate_spaces_figure(summary), smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
