"""One cell of a suite: a pair of its SAEs compared both ways (rule suite_cell)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402
from saesim.similarity import ComparisonOptions  # noqa: E402
from saesim.workflow.suite_runs import suite_cell, trained_info  # noqa: E402


def member_info(side, info_path):
    if side["kind"] == "imported":
        return json.loads(Path(info_path).read_text())
    return trained_info(info_path, label=side["label"], hook=side["hook"], variant=side["variant"], seed=side["seed"])


def main(smk):
    cell = smk.params.cell
    a, b = cell["a"], cell["b"]
    options = dict(cell["options"])
    where = {key: options.pop(key) for key in ("suite", "axis")}
    res = suite_cell(a["spec"], b["spec"], member_info(a, smk.input.a), member_info(b, smk.input.b), **where,
                     options=ComparisonOptions.with_overrides(None, options, "suite_cell"))
    write_json_atomic(smk.output[0], res)
    p = res["pair"]
    from saesim.similarity.shared_init import shared_init_warning

    warning = shared_init_warning(p["shared_init"], a["label"], b["label"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"{a['label']} -> {b['label']}: mmcs {p['mmcs_a_to_b']:.3f}; {b['label']} -> {a['label']}: {p['mmcs_b_to_a']:.3f}")


run(snakemake, main)  # noqa: F821
