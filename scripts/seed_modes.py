"""Shared vs independent initialisation: one variant under each seed mode, with its
trajectory from the initialised SAE (rule seed_modes)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_csv_atomic, write_json_atomic  # noqa: E402


def main(smk):
    from saesim.analysis.seed_modes import measure_seed_modes, seed_modes_table
    from saesim.saes.training import SAESpec

    specs = {}
    for mode, mode_specs in smk.params.specs.items():
        specs[mode] = {}
        for seed, spec in zip(smk.params.seeds, mode_specs):
            spec = dict(spec)
            for key in ("matryoshka_widths", "exclude_positions"):
                spec[key] = tuple(spec.get(key, ()))
            specs[mode][seed] = SAESpec(**spec)
    published = {smk.params.own_mode: dict(zip(smk.params.seeds, smk.input.saes))} if smk.input.saes else {}
    result = measure_seed_modes(
        smk.input.store,
        specs,
        smk.params.fractions,
        Path(smk.output.json).with_name(".seed-modes-work"),  # one job per experiment; emptied first
        published=published,
        baseline=json.loads(Path(smk.input.baseline).read_text()),
        memory_budget_mb=smk.params.memory_budget_mb,
    )
    result.update(experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    write_json_atomic(smk.output.json, result)
    table = seed_modes_table(result, experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    out = Path(smk.output.table)
    write_csv_atomic(table, out)
    print(table.to_string())


run(snakemake, main)  # noqa: F821
