"""Member x member matrix of a suite, value and random baseline in each cell (rule plot_suite_matrix)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure, suite_matrix  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    fig = suite_matrix(pd.read_csv(smk.input[0]), list(smk.params.members), title=f"suite {smk.wildcards.suite}")
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
