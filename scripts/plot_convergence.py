"""Stability, drift from initialisation and quality along training, from step 0 (rule plot_convergence)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure, trajectory_plot  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    table = pd.read_csv(smk.input.table)
    row = table.iloc[0]
    fig = trajectory_plot(
        table,
        title=f"{smk.wildcards.exp}: {row['variant']} at {row['hook']}, {int(row['n_seeds'])} seeds, from initialisation: has training converged?",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
