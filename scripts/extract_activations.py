"""Activations of several hooks of a language model in one forward pass, into one store per hook
(rules extract_activations_*)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    import torch

    from saesim.sources.corpus import load_corpus
    from saesim.sources.extraction import extract_to_stores
    from saesim.sources.language import LanguageModelSpec, load_language_model

    torch.set_num_threads(smk.threads)
    source = smk.params.source
    spec = LanguageModelSpec.from_source(source, smk.params.device)
    corpus = load_corpus(smk.input.corpus)
    model, _ = load_language_model(spec)
    store = smk.params.store  # the validated config: defaults from the schema
    summary = extract_to_stores(
        model,
        corpus.tokens,
        smk.params.hooks,
        dict(zip(smk.params.hooks, smk.output)),
        batch_size=source["batch_size"],
        dtype=store["dtype"],
        chunk_rows=store["chunk_rows"],
        model_name=spec.display_name,
        attrs={"corpus_sha256": corpus.content_hash(), "corpus_origin": corpus.meta.get("origin", "")},
    )
    print(summary)


run(snakemake, main)  # noqa: F821
