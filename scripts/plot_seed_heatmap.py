"""Seed x seed similarity matrices (rule plot_seed_heatmap)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure, seed_heatmap  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    fig = seed_heatmap(pd.read_csv(smk.input.pairs), pd.read_csv(smk.input.stability))
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
