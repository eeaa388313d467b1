"""Ground-truth feature recovery of one SAE on a synthetic store: saesim's best-|cos| recovery and
sae_lens.synthetic's MCC, uniqueness and F1 (rule ground_truth_recovery)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821

from saesim.stores.activation_store import open_store  # noqa: E402
from saesim.saes.loading import load_sae_weights  # noqa: E402
from saesim.errors import SaesimError  # noqa: E402
from saesim.analysis.ground_truth import library_metrics, random_recovery_baseline, recovery  # noqa: E402
from saesim.workflow.rulekit import run, write_json_atomic  # noqa: E402


def main(smk):
    sae = load_sae_weights(smk.input.sae)
    with open_store(smk.input.store) as store:
        truth = store.group("ground_truth")["features"]
        store_hash = store.content_hash
        true_l0 = store.attrs.get("true_l0")
    if sae.W_dec.shape[1] != truth.shape[1]:
        raise SaesimError(
            f"{smk.input.sae}: SAE d_in={sae.W_dec.shape[1]} does not match the store "
            f"{smk.input.store} (d={truth.shape[1]})"
        )
    result = recovery(sae.W_dec, truth)
    result["baseline"] = random_recovery_baseline(sae.W_dec.shape[0], truth)
    lib = library_metrics(smk.input.sae, smk.input.store)  # sae_lens.synthetic's MCC, uniqueness, F1
    result["baseline"].update(lib.pop("chance"))
    result.update(lib)
    result["true_l0"] = float(true_l0) if true_l0 is not None else None
    result.update(sae=str(smk.input.sae), store=str(smk.input.store), store_content_hash=store_hash, identity=smk.params.identity)
    write_json_atomic(smk.output[0], result)
    print({k: v for k, v in result.items() if k != "gt_best_cos_per_feature"})


run(snakemake, main)  # noqa: F821
