"""Causal equivalence across two modular-addition models (rule causal_across_models): each model
with its own SAE spliced in at its hook, on the same inputs; latents paired by activation correlation."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    import time
    from pathlib import Path

    import torch
    from sae_lens import SAE

    from saesim.analysis.causal import causal_equivalence_across_models, modular_runner
    from saesim.errors import SaesimError
    from saesim.hashes import file_sha256
    from saesim.sources.modular import WEIGHTS_FILE, all_inputs, all_labels, load_modular_model

    start = time.perf_counter()
    torch.set_num_threads(smk.threads)
    opts = smk.params.causal
    hook_a, hook_b = opts["hooks"]
    (model_a, cfg_a, _), (model_b, cfg_b, _) = load_modular_model(smk.input.model_a), load_modular_model(smk.input.model_b)
    if cfg_a.p != cfg_b.p:
        raise SaesimError(f"comparisons.{smk.wildcards.cmp}.causal: the models have p {cfg_a.p} ({smk.input.model_a}) "
                          f"and {cfg_b.p} ({smk.input.model_b}); the same inputs need the same p")
    n = min(int(opts.get("max_inputs") or cfg_a.p**2), cfg_a.p**2)
    tokens, labels = all_inputs(cfg_a.p)[:n], all_labels(cfg_a.p)[:n]
    sae_a = SAE.load_from_disk(smk.input.sae_a, device="cpu")
    sae_b = SAE.load_from_disk(smk.input.sae_b, device="cpu")
    result = causal_equivalence_across_models(modular_runner(model_a, hook_a, tokens), modular_runner(model_b, hook_b, tokens),
                                              sae_a, sae_b, labels, int(opts["n_pairs"]), int(opts["n_top"]), seed=0)

    def provenance(sae, model, hook):
        return {"sae": str(sae), "sae_weights_sha256": file_sha256(Path(sae) / "sae_weights.safetensors"),
                "model": str(model), "model_weights_sha256": file_sha256(Path(model) / WEIGHTS_FILE), "hook": hook}

    result.update(comparison=smk.wildcards.cmp, a=provenance(smk.input.sae_a, smk.input.model_a, hook_a),
                  b=provenance(smk.input.sae_b, smk.input.model_b, hook_b),
                  inputs={"p": cfg_a.p, "n_inputs": n, "order": "(a, b) in index order a * p + b, the first n_inputs"},
                  options=dict(opts))
    write_json_atomic(smk.output[0], result)
    print({k: v for k, v in result.items() if k not in ("matched", "random")})
    print(f"causal equivalence across models: {time.perf_counter() - start:.1f} s")


run(snakemake, main)  # noqa: F821
