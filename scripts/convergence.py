"""The training trajectory of one variant's seeds, real and null, read from the snapshots
its training job kept: stability, quality and drift from initialisation (rule convergence).
Nothing is trained here."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_csv_atomic, write_json_atomic  # noqa: E402


def _specs(seeds, specs):
    from saesim.saes.training import SAESpec

    out = {}
    for seed, spec in zip(seeds, specs):
        spec = dict(spec)
        for key in ("matryoshka_widths", "exclude_positions"):
            spec[key] = tuple(spec.get(key, ()))
        out[seed] = SAESpec(**spec)
    return out


def main(smk):
    from saesim.analysis.convergence import convergence_table, measure_convergence

    null = None
    if smk.params.null_seeds:
        null = {
            "store": smk.input.null_store[0],
            "specs": _specs(smk.params.null_seeds, smk.params.null_specs),
            "published": dict(zip(smk.params.null_seeds, smk.input.null_saes)),
        }
    result = measure_convergence(
        smk.input.store,
        _specs(smk.params.seeds, smk.params.specs),
        smk.params.fractions,
        Path(smk.output.json).with_name(".convergence-work"),  # one job per experiment; emptied first
        published=dict(zip(smk.params.seeds, smk.input.saes)),
        baseline=json.loads(Path(smk.input.baseline).read_text()),
        null=null,
        memory_budget_mb=smk.params.memory_budget_mb,
    )
    result.update(experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    write_json_atomic(smk.output.json, result)
    table = convergence_table(result, experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    out = Path(smk.output.table)
    write_csv_atomic(table, out)
    print(table.to_string())


run(snakemake, main)  # noqa: F821
