"""One variant's seeds retrained with snapshots: stability and quality during training (rule convergence)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    from saesim.convergence import convergence_table, measure_convergence
    from saesim.training import SAESpec

    specs = {}
    for seed, spec in zip(smk.params.seeds, smk.params.specs):
        spec = dict(spec)
        for key in ("matryoshka_widths", "exclude_positions"):
            spec[key] = tuple(spec.get(key, ()))
        specs[seed] = SAESpec(**spec)
    result = measure_convergence(
        smk.input.store,
        specs,
        smk.params.fractions,
        Path(smk.output.json).with_name(".convergence-work"),  # one job per experiment; emptied first
        published=dict(zip(smk.params.seeds, smk.input.saes)),
        baseline=json.loads(Path(smk.input.baseline).read_text()),
        memory_budget_mb=smk.params.memory_budget_mb,
    )
    result.update(experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    if not result["final_equals_published"]:
        print("WARNING: the final snapshots differ from the published SAEs (nondeterministic training?)")
    write_json_atomic(smk.output.json, result)
    table = convergence_table(result, experiment=smk.wildcards.exp, hook=smk.params.hook, variant=smk.params.variant)
    out = Path(smk.output.table)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, out)
    print(table.to_string())


run(snakemake, main)  # noqa: F821
