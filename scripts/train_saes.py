"""Train every seed of one SAE variant with sae-lens on an activation store, one after the
other in this process (rules train_saes_*)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    from saesim.training import SAESpec, train_sae

    for spec, out, resume_dir, cache, identity in zip(
        smk.params.specs, smk.output, smk.params.resume_dirs, smk.params.trained_caches, smk.params.identities
    ):
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
        # the SAE's identity, beside the metrics (the copy kept in trained_cache has none:
        # one SAE, one folder, one identity)
        metrics_file = Path(out) / "metrics.json"
        write_json_atomic(metrics_file, {**json.loads(metrics_file.read_text()), "identity": identity})
        print(out, {k: metrics[k] for k in ("explained_variance", "l0", "dead_fraction", "training_seconds")}, flush=True)


run(snakemake, main)  # noqa: F821
