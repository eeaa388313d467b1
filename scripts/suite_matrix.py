"""Every cell of a suite in one table, row -> column (rule suite_matrix)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_csv_atomic  # noqa: E402
from saesim.workflow.suite_runs import matrix_table  # noqa: E402


def main(smk):
    cells = [json.loads(Path(f).read_text()) for f in smk.input]
    table = matrix_table(cells, list(smk.params.members))
    write_csv_atomic(table, smk.output[0])
    print(table.to_string())


run(snakemake, main)  # noqa: F821
