"""Decoder similarity of two SAEs of one variant (rule compare_seed_pair): a pair document of saesim's JSON contract."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.checkpoints import check_same_d_in, load_sae_weights  # noqa: E402
from saesim.contract import comparison_options, input_record, provenance, stamp  # noqa: E402
from saesim.rulekit import run, write_json_atomic  # noqa: E402
from saesim.similarity import compare_decoders  # noqa: E402


def main(smk):
    a = load_sae_weights(smk.input.a)
    b = load_sae_weights(smk.input.b)
    check_same_d_in(a, b)
    result = compare_decoders(
        a.W_dec,
        b.W_dec,
        a.W_enc,
        b.W_enc,
        memory_budget_mb=smk.params.memory_budget_mb,
        with_baseline=False,
    )
    result.update(sae_a=str(smk.input.a), sae_b=str(smk.input.b), identity=smk.params.identity)
    prov = provenance(
        {"a": input_record(a, str(smk.input.a)), "b": input_record(b, str(smk.input.b))},
        comparison_options(memory_budget_mb=smk.params.memory_budget_mb),
        {"baseline": None, "sae_a": int(smk.wildcards.a), "sae_b": int(smk.wildcards.b)},
    )
    write_json_atomic(smk.output[0], stamp(result, "pair", prov))
    print(result)


run(snakemake, main)  # noqa: F821
