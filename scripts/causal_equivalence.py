"""Causal equivalence of two seeds' matched latents (rule causal_equivalence): in the modular model
on its inputs, or in a language model on held-out contexts (the downstream loss's contexts and splice)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def modular_setup(smk, opts):
    """(runner, targets) of the modular model: its first ``max_tokens`` inputs in index order."""
    from saesim.analysis.causal import modular_runner
    from saesim.sources.modular import all_inputs, all_labels, load_modular_model

    model, cfg, _ = load_modular_model(smk.input.model)
    n = min(int(opts.get("max_tokens", 4096)), cfg.p * cfg.p)
    tokens, labels = all_inputs(cfg.p)[:n], all_labels(cfg.p)[:n]
    return modular_runner(model, smk.wildcards.hook, tokens), labels, {}


def language_setup(smk, opts):
    """(runner, None, record) of a language model: the first held-out contexts after the training
    corpus (ceil(max_tokens / n_ctx) of them), spliced where training's rows came from."""
    import math

    import numpy as np

    from saesim.analysis.causal import LanguageModelRunner
    from saesim.errors import SaesimError
    from saesim.sources.corpus import heldout_corpus, load_corpus
    from saesim.sources.language import LanguageModelSpec, load_language_model
    from saesim.stores.activation_store import open_store
    from saesim.stores.rows import eligible_rows, norm_cut, row_norms

    source = opts["source"]
    model, tokenizer = load_language_model(LanguageModelSpec.from_source(source, opts["device"]))
    corpus = source.get("corpus", {})
    n_contexts = max(1, math.ceil(int(opts["max_tokens"]) / int(corpus.get("n_ctx", 128))))
    train, heldout = heldout_corpus(tokenizer, n_contexts, **corpus)
    if train.content_hash() != load_corpus(smk.input.corpus).content_hash():
        raise SaesimError(f"{smk.input.corpus}: differs from the corpus rebuilt here; held-out contexts would not be held out")
    exclude = list(opts.get("exclude_positions", []))
    keep = np.broadcast_to(~np.isin(np.arange(heldout.n_ctx), exclude), heldout.tokens.shape)
    max_norm = None
    if opts.get("exclude_norm_above") is not None:
        with open_store(smk.input.store) as store:  # the norm cut training used
            max_norm = norm_cut(row_norms(store), eligible_rows(store, exclude), opts["exclude_norm_above"])
    runner = LanguageModelRunner(model, smk.wildcards.hook, heldout.tokens, keep, max_norm)
    record = {"heldout_contexts": heldout.n_contexts, "n_ctx": heldout.n_ctx, "heldout_tokens_sha256": heldout.content_hash(),
              "spliced_positions": "all but exclude_positions " + str(exclude), "max_norm": max_norm,
              "random_pairs": "mismatched matched latents (saesim.analysis.causal.mismatched_pairs)"}
    return runner, None, record


def main(smk):
    import time

    import torch
    from sae_lens import SAE

    from saesim.analysis.causal import causal_equivalence, choose_pairs, mismatched_pairs
    from saesim.similarity import compare_decoders

    start = time.perf_counter()
    torch.set_num_threads(smk.threads)
    opts = smk.params.causal
    language = opts.get("kind") == "language"
    runner, targets, record = (language_setup if language else modular_setup)(smk, opts)
    device = str(next(iter(runner.model.parameters())).device) if language else "cpu"
    sae_a = SAE.load_from_disk(smk.input.a, device=device)
    sae_b = SAE.load_from_disk(smk.input.b, device=device)
    dec_a = sae_a.W_dec.detach().float().cpu().numpy()
    dec_b = sae_b.W_dec.detach().float().cpu().numpy()
    _, arrays = compare_decoders(dec_a, dec_b, with_baseline=False, return_arrays=True, memory_budget_mb=smk.params.memory_budget_mb)
    ma, mb, mc, ra, rb = choose_pairs(arrays["matching_rows"], arrays["matching_cols"], arrays["matching_cos"],
                                      len(dec_a), len(dec_b), int(opts.get("n_pairs", 16)), seed=0,
                                      spacing="cos" if language else "rank")
    if language:  # forwards dominate: the random pairs reuse the matched pairs' ablations
        ra, rb = mismatched_pairs(ma, mb)
    result = causal_equivalence(runner, runner, sae_a, sae_b, targets, (ma, mb, mc), (ra, rb))
    result.update(identity=smk.params.identity, sae_a=str(smk.input.a), sae_b=str(smk.input.b), hook=smk.wildcards.hook,
                  **record)
    write_json_atomic(smk.output[0], result)
    print({k: v for k, v in result.items() if k not in ("matched", "random")})
    print(f"causal equivalence: {time.perf_counter() - start:.1f} s")


run(snakemake, main)  # noqa: F821
