"""Every similarity metric on random decoders of one shape (rule decoder_baseline)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.activation_store import open_store  # noqa: E402
from saesim.rulekit import run, write_json_atomic  # noqa: E402
from saesim.similarity import random_decoder_baseline  # noqa: E402


def main(smk):
    with open_store(smk.input.store) as store:
        d = store.d
    width = int(smk.wildcards.width)
    result = random_decoder_baseline(
        width, width, d, draws=smk.params.draws, seed=0, memory_budget_mb=smk.params.memory_budget_mb
    )
    result.update(n_a=width, n_b=width, d=d, draws=smk.params.draws, identity=smk.params.identity)
    write_json_atomic(smk.output[0], result)
    print(result)


run(snakemake, main)  # noqa: F821
