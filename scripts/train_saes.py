"""Train the SAEs of one job with sae-lens, one after the other in this process (rules
train_saes_*): every seed of one variant, or every SAE of an experiment (sae.train_jobs)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    from saesim.saes.training import SAESpec, train_sae

    snapshots = smk.params.get("snapshots") or [()] * len(smk.params.specs)
    jobs = zip(
        smk.params.specs, smk.params.stores, smk.output, smk.params.resume_dirs, smk.params.trained_caches, smk.params.identities, snapshots
    )
    for spec, store, out, resume_dir, cache, identity, fractions in jobs:
        spec = dict(spec)
        for key in ("matryoshka_widths", "exclude_positions"):
            spec[key] = tuple(spec.get(key, ()))
        metrics = train_sae(
            store,
            SAESpec(**spec),
            out,
            resume_dir=resume_dir,
            n_checkpoints=smk.config.get("resume_checkpoints", 0),
            trained_cache=cache,
            snapshots=fractions,
        )
        # the SAE's identity, beside the metrics (the copy kept in trained_cache has none:
        # one SAE, one folder, one identity)
        metrics_file = Path(out) / "metrics.json"
        write_json_atomic(metrics_file, {**json.loads(metrics_file.read_text()), "identity": identity})
        print(out, {k: metrics[k] for k in ("explained_variance", "l0", "dead_fraction", "training_seconds")}, flush=True)


run(snakemake, main)  # noqa: F821
