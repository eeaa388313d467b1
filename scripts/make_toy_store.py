"""Sample the toy model into an activation store (rule make_toy_store)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run  # noqa: E402
from saesim.toy_model import ToyModelConfig, write_toy_store  # noqa: E402


def main(smk):
    source = {k: v for k, v in smk.params.source.items() if k != "kind"}
    store = smk.params.store  # the validated config: defaults from the schema
    summary = write_toy_store(
        smk.output[0],
        ToyModelConfig(**source),
        n_rows=store["n_rows"],
        chunk_rows=store["chunk_rows"],
        dtype=store["dtype"],
    )
    print(summary)


run(snakemake, main)  # noqa: F821
