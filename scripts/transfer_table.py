"""Transfer of SAE A to B's activations, every hook pair of one comparison (rule transfer_table)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_csv_atomic  # noqa: E402
from saesim.similarity.universality.transfer import transfer_table  # noqa: E402


def main(smk):
    table = transfer_table(smk.input)
    write_csv_atomic(table, smk.output[0])
    print(table.to_string())


run(snakemake, main)  # noqa: F821
