"""Training curves of the modular model (rule plot_grokking)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.report.figures import grokking_curves, save_figure  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    model_dir = Path(smk.input.model)
    history = json.loads((model_dir / "history.json").read_text())
    cfg = json.loads((model_dir / "config.json").read_text())
    fig = grokking_curves(history, title=f"(a + b) mod {cfg['p']}, seed {cfg['seed']}, train fraction {cfg['train_frac']}", p=cfg["p"])
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
