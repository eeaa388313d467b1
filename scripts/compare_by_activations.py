"""Pair two SAEs' latents by activation correlation and compare the paired decoders
against random pairings, plus the same measures in neuron space (rule compare_by_activations)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    import numpy as np

    from saesim.similarity.universality import compare_by_activations, compare_neuron_activations
    from saesim.similarity.universality.transfer import DEFAULT_TRANSFER_ROWS, transfer_between_stores

    options = dict(smk.params.options)
    max_tokens = options.pop("max_tokens", None)
    transfer_rows = options.pop("transfer_rows", DEFAULT_TRANSFER_ROWS)
    junk = {}
    for side in ("a", "b"):
        path = smk.input.get(f"junk_{side}")
        junk[side] = np.asarray(json.loads(Path(path).read_text())["junk_token_ids"]) if path else None
    rows = {}
    if max_tokens:
        rows = {"rows_a": np.arange(max_tokens), "rows_b": np.arange(max_tokens)}
    result = compare_by_activations(
        smk.input.store_a,
        smk.input.sae_a,
        smk.input.store_b,
        smk.input.sae_b,
        junk_token_ids_a=junk["a"],
        junk_token_ids_b=junk["b"],
        position0_is_junk=junk["a"] is not None,
        **rows,
        **options,
    )
    summary = result.summary
    summary["neurons"] = compare_neuron_activations(
        smk.input.store_a, smk.input.store_b, n_null=options["n_null"], max_rows=options["max_rows"], seed=options["seed"], **rows
    )
    if transfer_rows:  # SAE A on B's held-out activations, raw and through fitted maps (docs/geometry.md)
        summary["transfer"] = transfer_between_stores(
            smk.input.store_a, smk.input.sae_a, smk.input.store_b, smk.input.sae_b,
            rows_a=rows.get("rows_a"), rows_b=rows.get("rows_b"),
            exclusions_a=smk.params.exclusions["a"], exclusions_b=smk.params.exclusions["b"],
            pairs=(result.arrays["one_to_one_a"], result.arrays["one_to_one_b"]),
            max_rows=transfer_rows, seed=options["seed"],
        )
    summary["hook_a"], summary["hook_b"] = smk.wildcards.hook_a, smk.wildcards.hook_b
    tmp = Path(smk.output.arrays).with_suffix(".partial.npz")
    result.save_arrays(tmp)
    tmp.replace(smk.output.arrays)
    write_json_atomic(smk.output.summary, summary)
    print(json.dumps({k: summary[k] for k in ("filters", "one_to_one", "relational")}, indent=1, default=str))


run(snakemake, main)  # noqa: F821
