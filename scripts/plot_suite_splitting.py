"""Feature-splitting histograms of a suite's pairs of different widths (rule plot_suite_splitting)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.report.figures import save_figure, suite_splitting  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    cells = [json.loads(Path(f).read_text()) for f in smk.input]
    fig = suite_splitting(cells, title=f"suite {smk.wildcards.suite}: feature splitting")
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
