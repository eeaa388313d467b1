"""What the language model loses when each SAE's reconstruction replaces its activation, on
held-out contexts (rule downstream_loss)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    import numpy as np
    import torch
    from sae_lens import SAE

    from saesim.stores.activation_store import open_store
    from saesim.sources.corpus import heldout_corpus, load_corpus
    from saesim.analysis.downstream import downstream_losses
    from saesim.errors import SaesimError
    from saesim.workflow.layout import ArtifactId, sae_key_identity
    from saesim.sources.language import LanguageModelSpec, load_language_model
    from saesim.stores.rows import eligible_rows, norm_cut, row_norms

    torch.set_num_threads(smk.threads)
    source = smk.params.source
    spec = LanguageModelSpec.from_source(source, smk.params.device)
    model, tokenizer = load_language_model(spec)
    train, heldout = heldout_corpus(tokenizer, smk.params.n_contexts, **source.get("corpus", {}))
    stored = load_corpus(smk.input.corpus)
    if train.content_hash() != stored.content_hash():
        raise SaesimError(f"{smk.input.corpus}: differs from the corpus rebuilt here; held-out contexts would not be held out")
    exclude = list(smk.params.exclude_positions)
    keep = np.broadcast_to(~np.isin(np.arange(heldout.n_ctx), exclude), heldout.tokens.shape)
    max_norm = {}
    if smk.params.exclude_norm_above is not None:
        for hook, path in zip(smk.params.hooks, smk.input.stores):
            with open_store(path) as store:  # the norm cut training used
                eligible = eligible_rows(store, exclude)
                max_norm[hook] = norm_cut(row_norms(store), eligible, smk.params.exclude_norm_above)
    device = next(iter(model.parameters())).device
    saes, loaded = {}, []
    identities = {key: sae_key_identity(key, smk.wildcards.exp) for key in smk.params.sae_keys}
    for key, path in zip(smk.params.sae_keys, smk.input.saes):
        sae = SAE.load_from_disk(path, device=str(device))
        loaded.append(sae)
        saes[key] = (identities[key].hook, lambda x, sae=sae: sae.decode(sae.encode(x)))
    results = downstream_losses(
        model, heldout.tokens, saes, keep={h: keep for h in smk.params.hooks}, max_norm=max_norm,
        batch_size=source.get("batch_size", 8), progress=True,
    )
    write_json_atomic(
        smk.output[0],
        {
            "saes": {k: {**r.to_dict(), "identity": identities[k].to_dict()} for k, r in results.items()},
            "identity": ArtifactId(smk.wildcards.exp).to_dict(),
            "heldout_contexts": heldout.n_contexts,
            "n_ctx": heldout.n_ctx,
            "heldout_tokens_sha256": heldout.content_hash(),
            "training_tokens_sha256": train.content_hash(),
            "spliced_positions": "all but exclude_positions " + str(exclude),
            "max_norm": max_norm,
            "model": spec.display_name,
        },
    )
    for k, r in results.items():
        print(f"{k}: CE clean {r.ce_clean:.4f} sae {r.ce_sae:.4f} zero {r.ce_zero:.4f} "
              f"recovered {r.ce_loss_recovered:.4f} KL {r.kl_div:.4f}")


run(snakemake, main)  # noqa: F821
