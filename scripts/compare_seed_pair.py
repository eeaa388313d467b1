"""Decoder similarity of two SAEs of one variant (rule compare_seed_pair), in raw coordinates
and, under ``spaces``, in the store's mean-removed and whitened coordinates (saesim.similarity.geometry):
a pair document of saesim's JSON contract."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.saes.loading import check_same_d_in, load_sae_weights  # noqa: E402
from saesim.similarity.geometry import compare_in_spaces, load_moments  # noqa: E402
from saesim.similarity.contract import comparison_options, input_record, provenance, stamp  # noqa: E402
from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402
from saesim.similarity import ComparisonOptions, compare_decoders  # noqa: E402


def main(smk):
    a = load_sae_weights(smk.input.a)
    b = load_sae_weights(smk.input.b)
    check_same_d_in(a, b)
    options = ComparisonOptions(memory_budget_mb=smk.params.memory_budget_mb)
    result = compare_decoders(a.W_dec, b.W_dec, a.W_enc, b.W_enc, options=options, with_baseline=False)
    source = getattr(smk.input, "moments", None)  # the store's moments (null store or store)
    if source is not None:
        moments = load_moments(source, **getattr(smk.params, "row_exclusions", {}))
        # decoder metrics only: shared latents (encoders) stay a raw-space metric, to keep it cheap
        result["spaces"] = compare_in_spaces(
            a.W_dec, b.W_dec, None, None, moments, options=options
        )
    result.update(sae_a=str(smk.input.a), sae_b=str(smk.input.b), identity=smk.params.identity)
    prov = provenance(
        {"a": input_record(a, str(smk.input.a)), "b": input_record(b, str(smk.input.b))},
        comparison_options(options, encoders=True, with_baseline=False),
        {"baseline": None, "sae_a": int(smk.wildcards.a), "sae_b": int(smk.wildcards.b)},
    )
    write_json_atomic(smk.output[0], stamp(result, "pair", prov))
    print({k: v for k, v in result.items() if k != "spaces"})


run(snakemake, main)  # noqa: F821
