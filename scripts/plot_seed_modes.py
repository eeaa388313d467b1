"""Stability and drift along training under shared and independent initialisation (rule plot_seed_modes)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure, seed_modes_plot  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    table = pd.read_csv(smk.input.table)
    row = table.iloc[0]
    fig = seed_modes_plot(
        table,
        title=f"{smk.wildcards.exp}: {row['variant']} at {row['hook']}: shared or independent initialisation (stability or stabilization?)",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
