"""Cross-seed stability against L0, with the random baseline (rule plot_stability_vs_l0)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import save_figure, stability_vs_l0  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    stability = pd.read_csv(smk.input.stability)
    true_l0 = smk.params.true_l0  # the config's expected L0; the store's measured one when known
    if "true_l0" in stability and stability["true_l0"].notna().any():
        true_l0 = float(stability["true_l0"].mean())
    fig = stability_vs_l0(
        stability,
        pd.read_csv(smk.input.pairs),
        true_l0=true_l0,
        title=f"{smk.wildcards.exp}: do SAEs trained with different seeds agree?",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
