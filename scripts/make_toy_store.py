"""Sample a sae_lens.synthetic model into an activation store with its ground truth (rule make_toy_store)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402
from saesim.sources.synthetic import write_synthetic_store  # noqa: E402


def main(smk):
    import torch

    torch.set_num_threads(smk.threads)  # fixed thread count: byte-identical stores on CPU
    store = smk.params.store  # the validated config: defaults from the schema
    summary = write_synthetic_store(
        smk.output[0],
        smk.params.source["model"],
        n_rows=store["n_rows"],
        chunk_rows=store["chunk_rows"],
        dtype=store["dtype"],
        where=f"experiments.{smk.wildcards.exp}.source.model",
    )
    print(summary)


run(snakemake, main)  # noqa: F821
