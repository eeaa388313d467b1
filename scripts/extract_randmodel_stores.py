"""The random-weights model null's stores: the experiment's model re-initialised
(saesim.sources.random_model), its activations extracted over the same inputs exactly like the
real stores, one store per hook (rules extract_randmodel_stores_*)."""

import json
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402


def language(smk, out_paths):
    import torch

    from saesim.sources.corpus import load_corpus
    from saesim.sources.extraction import extract_to_stores
    from saesim.sources.language import LanguageModelSpec, load_language_model
    from saesim.sources.random_model import STORE_ATTR, reinitialize_hf_model, weights_sha256

    torch.set_num_threads(smk.threads)
    source, store, null = smk.params.source, smk.params.store, smk.params.model_null
    spec = LanguageModelSpec.from_source(source, smk.params.device)
    corpus = load_corpus(smk.input.corpus)
    done = {}
    model, _ = load_language_model(
        spec, prepare=lambda hf: done.update(reinitialize_hf_model(hf, null["seed"], null["keep_embeddings"]), sha256=weights_sha256(hf))
    )
    return extract_to_stores(
        model,
        corpus.tokens,
        smk.params.hooks,
        out_paths,
        batch_size=source["batch_size"],
        dtype=store["dtype"],
        chunk_rows=store["chunk_rows"],
        model_name=f"{spec.display_name} (random weights, seed {null['seed']})",
        attrs={"corpus_sha256": corpus.content_hash(), "corpus_origin": corpus.meta.get("origin", ""),
               STORE_ATTR: json.dumps(done, sort_keys=True)},
    )


def modular(smk, out_paths):
    import torch

    from saesim.sources.extraction import extract_modular_stores
    from saesim.sources.modular import ModularConfig, load_modular_model
    from saesim.sources.random_model import STORE_ATTR, random_modular_model, weights_sha256

    torch.set_num_threads(smk.threads)
    store, null = smk.params.store, smk.params.model_null
    values = {k: v for k, v in smk.params.source.items() if k not in ("kind", "key_rel_threshold")}
    cfg = ModularConfig.from_dict({**values, "device": "cpu"})
    trained = load_modular_model(smk.input.model)[0] if null["keep_embeddings"] else None
    model, done = random_modular_model(cfg, null["seed"], trained, null["keep_embeddings"])
    done["sha256"] = weights_sha256(model)
    return extract_modular_stores(
        model,
        smk.params.hooks,
        out_paths,
        n_rows=store.get("n_rows"),  # None: every input once
        dtype=store["dtype"],
        chunk_rows=store["chunk_rows"],
        model_name=f"modular-p{cfg.p}-untrained-seed{null['seed']}",
        rel_threshold=smk.params.source["key_rel_threshold"],
        attrs={"config": cfg.to_dict(), "grok_epoch": -1, STORE_ATTR: json.dumps(done, sort_keys=True)},
    )


def main(smk):
    extract = {"language": language, "modular": modular}[smk.params.family]
    print(extract(smk, dict(zip(smk.params.hooks, smk.output))))


run(snakemake, main)  # noqa: F821
