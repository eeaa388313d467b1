"""Causal equivalence of two seeds' matched latents in the modular model (rule causal_equivalence)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    import torch
    from sae_lens import SAE

    from saesim.analysis.causal import causal_equivalence, choose_pairs, modular_runner
    from saesim.sources.modular import all_inputs, all_labels, load_modular_model
    from saesim.similarity import compare_decoders

    torch.set_num_threads(smk.threads)
    opts = smk.params.causal
    model, cfg, _ = load_modular_model(smk.input.model)
    n = min(int(opts.get("max_tokens", 4096)), cfg.p * cfg.p)
    tokens, labels = all_inputs(cfg.p)[:n], all_labels(cfg.p)[:n]
    sae_a = SAE.load_from_disk(smk.input.a, device="cpu")
    sae_b = SAE.load_from_disk(smk.input.b, device="cpu")
    dec_a = sae_a.W_dec.detach().float().numpy()
    dec_b = sae_b.W_dec.detach().float().numpy()
    _, arrays = compare_decoders(dec_a, dec_b, with_baseline=False, return_arrays=True, memory_budget_mb=smk.params.memory_budget_mb)
    ma, mb, mc, ra, rb = choose_pairs(arrays["matching_rows"], arrays["matching_cols"], arrays["matching_cos"],
                                      len(dec_a), len(dec_b), int(opts.get("n_pairs", 16)), seed=0)
    runner = modular_runner(model, smk.wildcards.hook, tokens)
    result = causal_equivalence(runner, runner, sae_a, sae_b, labels, (ma, mb, mc), (ra, rb))
    result.update(identity=smk.params.identity, sae_a=str(smk.input.a), sae_b=str(smk.input.b), hook=smk.wildcards.hook)
    write_json_atomic(smk.output[0], result)
    print({k: v for k, v in result.items() if k not in ("matched", "random")})


run(snakemake, main)  # noqa: F821
