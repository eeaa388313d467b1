"""Train one SAE with sae-lens on an activation store (rule train_sae)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run  # noqa: E402


def main(smk):
    from saesim.training import SAESpec, train_sae

    spec = dict(smk.params.spec)
    for key in ("matryoshka_widths", "exclude_positions"):
        spec[key] = tuple(spec.get(key, ()))
    metrics = train_sae(
        smk.input.store,
        SAESpec(**spec),
        smk.output[0],
        resume_dir=smk.params.resume_dir,
        n_checkpoints=smk.config.get("resume_checkpoints", 0),
    )
    print({k: metrics[k] for k in ("explained_variance", "l0", "dead_fraction", "training_seconds")})


run(snakemake, main)  # noqa: F821
