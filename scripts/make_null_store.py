"""Gaussian null of one activation store: same mean, covariance, rows and dtype (rule make_null_store)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.sources.gaussian_null import write_null_store  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    summary = write_null_store(
        smk.input.store,
        smk.output[0],
        exclude_positions=smk.params.exclude_positions,
        exclude_norm_above=smk.params.exclude_norm_above,
        seed=smk.params.seed,
    )
    print(summary)


run(snakemake, main)  # noqa: F821
