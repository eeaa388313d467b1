"""Tables of SAE quality and stability with baselines, the trained null and the random-weights model (rule stability_table)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.workflow.rulekit import run  # noqa: E402
from saesim.report.tables import load_baselines, pair_table, sae_table, stability_table, summary_markdown  # noqa: E402


def main(smk):
    # real SAEs and pairs, those of the trained null and of the random-weights model (column role)
    randmodel_saes = getattr(smk.input, "randmodel_saes", [])
    randmodel_pairs = getattr(smk.input, "randmodel_pairs", [])
    saes = sae_table(
        [*smk.input.saes, *smk.input.null_saes, *randmodel_saes],
        [*smk.input.ground_truth, *smk.input.null_ground_truth],
        smk.input.downstream,
    )
    pairs = pair_table([*smk.input.pairs, *smk.input.null_pairs, *randmodel_pairs], saes)
    stability = stability_table(saes, pairs, load_baselines(smk.input.baselines))
    for df, path in ((saes, smk.output.saes), (pairs, smk.output.pairs), (stability, smk.output.stability)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, float_format="%.6g")
    summary = summary_markdown(stability, smk.params.true_l0)
    Path(smk.output.summary).write_text(summary)
    print(summary)


run(snakemake, main)  # noqa: F821
