"""Hook x hook heatmap of relational similarity for one comparison (rule plot_layer_heatmap)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import layer_heatmap, save_figure  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    fig = layer_heatmap(pd.read_csv(smk.input[0]), title=f"{smk.wildcards.cmp}: similarity of paired SAE decoders across hooks")
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
