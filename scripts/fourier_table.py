"""Fourier overlap of every SAE in one table (rule fourier_table)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402
from saesim.report.tables import fourier_table  # noqa: E402


def main(smk):
    table = fourier_table(smk.input)
    table.to_csv(smk.output[0], index=False, float_format="%.6g")
    print(table.to_string())


run(snakemake, main)  # noqa: F821
