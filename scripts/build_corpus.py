"""Tokenize the text corpus once into fixed-length contexts (rule build_corpus)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run  # noqa: E402


def main(smk):
    from saesim.corpus import build_corpus, save_corpus
    from saesim.models.language import load_tokenizer

    source = smk.params.source
    tokenizer = load_tokenizer({k: source[k] for k in ("name", "gguf_file") if k in source} | {"source": source["kind"]})
    corpus = build_corpus(tokenizer, **source.get("corpus", {}))
    save_corpus(smk.output[0], corpus)
    print(corpus.meta)


run(snakemake, main)  # noqa: F821
