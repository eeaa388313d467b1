"""Cross-seed PW-MCC against ground-truth MCC per SAE variant, and their correlation (rule plot_pwmcc_vs_gtmcc)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.report.figures import pwmcc_vs_gtmcc_plot, save_figure  # noqa: E402
from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402
from saesim.report.tables import pwmcc_vs_gtmcc  # noqa: E402


def main(smk):
    result = pwmcc_vs_gtmcc(pd.read_csv(smk.input.stability))
    write_json_atomic(smk.output.json, result)
    fig = pwmcc_vs_gtmcc_plot(result, title=f"{smk.wildcards.exp}: does cross-seed stability predict ground-truth recovery?")
    save_figure(fig, smk.output.pdf, smk.output.png)
    print({k: v for k, v in result.items() if k != "variants"})


run(snakemake, main)  # noqa: F821
