"""Stability and explained variance during training (rule plot_convergence)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.plotting import convergence_plot, save_figure  # noqa: E402
from saesim.rulekit import run  # noqa: E402


def main(smk):
    table = pd.read_csv(smk.input.table)
    row = table.iloc[0]
    same = bool(table["final_equals_published"].all())
    fig = convergence_plot(
        table,
        title=f"{smk.wildcards.exp}: {row['variant']} at {row['hook']}, {int(row['n_seeds'])} seeds: has training converged?",
        note="last point = the published SAEs (bit for bit)" if same else "WARNING: last point differs from the published SAEs",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
