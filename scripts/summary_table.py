"""Every SAE variant of every experiment in one table: CSV, Markdown and HTML (rule summary_table)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import pandas as pd  # noqa: E402

from saesim.workflow.layout import parse  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402
from saesim.report.tables import cross_experiment_summary, cross_summary_html, cross_summary_markdown  # noqa: E402

def _by_experiment(paths):
    """Experiment -> its table (CSV tables record no identity: the layout's inverse names it)."""
    return {parse("table", p)[0].experiment: pd.read_csv(p) for p in paths}


def main(smk):
    summary = cross_experiment_summary(
        _by_experiment(smk.input.stability), _by_experiment(smk.input.fourier), kinds=smk.params.kinds,
        per_latent=_by_experiment(smk.input.get("per_latent", [])),
    )
    Path(smk.output.csv).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(smk.output.csv, index=False, float_format="%.6g")
    markdown = cross_summary_markdown(summary)
    Path(smk.output.md).write_text(markdown)
    Path(smk.output.html).write_text(cross_summary_html(summary))
    print(markdown)


run(snakemake, main)  # noqa: F821
