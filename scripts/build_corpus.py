"""Tokenize the text corpus once into fixed-length contexts, and list the tokenizer's junk
tokens (whitespace, punctuation, special) for the universality filters (rule build_corpus)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    from saesim.sources.corpus import build_corpus, save_corpus
    from saesim.sources.language import load_tokenizer
    from saesim.similarity.universality import junk_token_ids

    source = smk.params.source
    spec = {"source": source["kind"], **{k: source[k] for k in ("name", "gguf_file") if k in source}}
    tokenizer = load_tokenizer(spec)
    corpus = build_corpus(tokenizer, **source.get("corpus", {}))
    save_corpus(smk.output.corpus, corpus)
    vocabulary = [tokenizer.decode([i]) for i in range(len(tokenizer))]
    special = [i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None]
    junk = junk_token_ids(vocabulary, extra_ids=special)
    write_json_atomic(smk.output.junk, {"junk_token_ids": junk.tolist(), "vocab_size": len(vocabulary)})
    print(corpus.meta, f"{len(junk)} junk tokens of {len(vocabulary)}")


run(snakemake, main)  # noqa: F821
