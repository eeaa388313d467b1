"""Paired-vs-random bars with p-values for one comparison (rule plot_paired_vs_random)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import paired_vs_random, save_figure  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    transfer = smk.input.get("transfer")
    fig = paired_vs_random(
        pd.read_csv(smk.input[0]),
        title=f"{smk.wildcards.cmp}: paired decoder geometry vs random pairings",
        transfer=pd.read_csv(transfer) if transfer else None,
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
