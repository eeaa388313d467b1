"""Identity (and, with a store, quality) of one imported SAE (rule import_sae)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402
from saesim.workflow.suite_runs import describe_imported_sae  # noqa: E402


def main(smk):
    ident = describe_imported_sae(
        dict(smk.params.item),
        store=smk.input.get("store"),
        eval_rows=smk.params.eval_rows,
        exclude_positions=list(smk.params.exclude_positions),
    )
    write_json_atomic(smk.output[0], ident)
    print(ident)


run(snakemake, main)  # noqa: F821
