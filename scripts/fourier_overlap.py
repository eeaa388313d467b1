"""Fourier overlap of one SAE's decoder on the modular model (rule fourier_overlap)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

import numpy as np  # noqa: E402

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.saes.loading import load_sae_weights  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402
from saesim.analysis.fourier import fourier_overlap, random_overlap_baseline  # noqa: E402
from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    sae = load_sae_weights(smk.input.sae)
    with open_store(smk.input.store) as store:
        truth = store.group("ground_truth")
        key_frequencies = truth["key_frequencies"].tolist()
    result = {"key_frequencies": key_frequencies, "sae": str(smk.input.sae), "identity": smk.params.identity}
    for space in ("activation_subspace", "embedding_subspace"):
        basis = truth[space]
        if basis.shape[1] != sae.W_dec.shape[1]:
            raise SaesimError(
                f"{smk.input.sae}: SAE d_in={sae.W_dec.shape[1]} does not match the store {smk.input.store} (d={basis.shape[1]})"
            )
        overlap = fourier_overlap(sae.W_dec, basis)
        result[space] = {
            "dim": int(basis.shape[0]),
            "mean_overlap": float(overlap.mean()),
            "median_overlap": float(np.median(overlap)),
            "frac_above_0.5": float((overlap >= 0.5).mean()),
            "random_baseline": random_overlap_baseline(basis),
            "per_latent": overlap.tolist(),
        }
    write_json_atomic(smk.output[0], result)
    print({k: {kk: vv for kk, vv in v.items() if kk != "per_latent"} if isinstance(v, dict) else v for k, v in result.items()})


run(snakemake, main)  # noqa: F821
