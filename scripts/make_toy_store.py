"""Sample the toy model into an activation store (rule make_toy_store)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run  # noqa: E402
from saesim.toy_model import ToyModelConfig, write_toy_store  # noqa: E402


def main(smk):
    source = {k: v for k, v in smk.params.source.items() if k != "kind"}
    store = smk.params.store
    summary = write_toy_store(
        smk.output[0],
        ToyModelConfig(**source),
        n_rows=store.get("n_rows", 200_000),
        chunk_rows=store.get("chunk_rows", 8192),
        dtype=store.get("dtype", "float32"),
    )
    print(summary)


run(snakemake, main)  # noqa: F821
