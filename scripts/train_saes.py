"""Train every seed of one SAE variant with sae-lens on an activation store, one after the
other in this process (rules train_saes_*)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run  # noqa: E402


def main(smk):
    from saesim.training import SAESpec, train_sae

    for spec, out, resume_dir, cache in zip(smk.params.specs, smk.output, smk.params.resume_dirs, smk.params.trained_caches):
        spec = dict(spec)
        for key in ("matryoshka_widths", "exclude_positions"):
            spec[key] = tuple(spec.get(key, ()))
        metrics = train_sae(
            smk.input.store,
            SAESpec(**spec),
            out,
            resume_dir=resume_dir,
            n_checkpoints=smk.config.get("resume_checkpoints", 0),
            trained_cache=cache,
        )
        print(out, {k: metrics[k] for k in ("explained_variance", "l0", "dead_fraction", "training_seconds")}, flush=True)


run(snakemake, main)  # noqa: F821
