"""Decoder-row x true-feature cosine heatmaps below, at and above the true L0 (rule plot_latent_vs_truth)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.saes.loading import load_sae_weights  # noqa: E402
from saesim.analysis.ground_truth import latent_truth_cosines  # noqa: E402
from saesim.report.figures import ARCHITECTURE_LABELS, latent_vs_truth, save_figure  # noqa: E402
from saesim.workflow.rulekit import run  # noqa: E402


def main(smk):
    with open_store(smk.input.store) as store:
        truth = store.group("ground_truth")["features"]
        true_l0 = float(store.attrs.get("true_l0", smk.params.true_l0))
    cosines, labels = [], []
    for path in smk.input.saes:
        metrics = json.loads((Path(path) / "metrics.json").read_text())
        cosines.append(latent_truth_cosines(load_sae_weights(path).W_dec, truth))
        rel = "<" if metrics["l0"] < true_l0 - 0.5 else (">" if metrics["l0"] > true_l0 + 0.5 else "\u2248")
        labels.append(f"{metrics['sparsity_key']}={metrics['sparsity']:g}: L0={metrics['l0']:.1f} {rel} true L0")
    arch = ARCHITECTURE_LABELS.get(metrics["architecture"], metrics["architecture"])
    fig = latent_vs_truth(cosines, labels, title=f"{arch} decoder rows vs true features (true L0 = {true_l0:.1f})")
    save_figure(fig, smk.output.pdf, smk.output.png)


run(snakemake, main)  # noqa: F821
