"""Fourier overlap of SAE decoders against the random-direction baseline (rule plot_fourier_overlap)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import fourier_overlap_plot, save_figure  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    fig = fourier_overlap_plot(
        pd.read_csv(smk.input.fourier),
        title=f"{smk.wildcards.exp}: do SAE latents live in the model's key-frequency subspace?",
    )
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
