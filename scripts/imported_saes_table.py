"""One row per imported SAE of an experiment (rule imported_saes_table)."""

import json
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.workflow.rulekit import run, write_csv_atomic  # noqa: E402

COLUMNS = ["label", "path", "format", "hookpoint", "layer", "width", "d", "architecture", "k", "l0", "l0_source",
           "explained_variance", "dead_fraction", "mse", "eval_rows", "run", "seed"]


def main(smk):
    rows = [json.loads(open(f).read()) for f in smk.input]
    table = pd.DataFrame(rows)
    table = table[[c for c in COLUMNS if c in table] + sorted(set(table) - set(COLUMNS) - {"store_content_hash"})]
    write_csv_atomic(table, smk.output[0])
    print(table.to_string())


run(snakemake, main)  # noqa: F821
