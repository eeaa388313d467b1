"""Every similarity metric on random decoders of one shape (rule decoder_baseline), in raw
coordinates and, under ``spaces``, isotropic in the mean-removed and whitened spaces."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.similarity.geometry import baselines_in_spaces, load_moments  # noqa: E402
from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402
from saesim.similarity import ComparisonOptions, random_decoder_baseline  # noqa: E402


def main(smk):
    with open_store(smk.input.store) as store:
        d = store.d
    width = int(smk.wildcards.width)
    options = ComparisonOptions(baseline_draws=smk.params.draws, seed=0, memory_budget_mb=smk.params.memory_budget_mb)
    result = random_decoder_baseline(width, width, d, options=options)
    source = getattr(smk.input, "moments", None)
    if source is not None:
        moments = load_moments(source, **getattr(smk.params, "row_exclusions", {}))
        result["spaces"] = baselines_in_spaces(width, width, moments, raw=dict(result), options=options)
    result.update(n_a=width, n_b=width, d=d, draws=smk.params.draws, identity=smk.params.identity)
    write_json_atomic(smk.output[0], result)
    print({k: v for k, v in result.items() if k != "spaces"})


run(snakemake, main)  # noqa: F821
