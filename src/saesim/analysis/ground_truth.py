"""How well an SAE's decoder recovers known ground-truth feature directions."""

from __future__ import annotations

import numpy as np

# the numpy encoder of a saved SAE lives with the SAEs; imported here for the GT metrics and scripts
from saesim.saes.encoding import encode_acts, encode_fires, load_encoder  # noqa: F401
from saesim.similarity.geometry import unit_rows


def latent_truth_cosines(decoder_rows: np.ndarray, true_features: np.ndarray) -> np.ndarray:
    """``[n_latents, n_features]`` cosine between each decoder row and each true feature."""
    return unit_rows(decoder_rows) @ unit_rows(true_features).T


def recovery(decoder_rows: np.ndarray, true_features: np.ndarray, threshold: float = 0.9) -> dict:
    """Per true feature, its best |cos| with any latent; their mean and the fraction >= threshold."""
    best = np.abs(latent_truth_cosines(decoder_rows, true_features)).max(axis=0)
    return {
        "gt_mean_max_cos": float(best.mean()),
        "gt_frac_recovered": float((best >= threshold).mean()),
        "gt_threshold": threshold,
        "gt_best_cos_per_feature": best.tolist(),
    }


def random_recovery_baseline(n_latents: int, true_features: np.ndarray, *, draws: int = 5, seed: int = 0, threshold: float = 0.9) -> dict:
    """The same recovery numbers for random Gaussian decoders of the same shape."""
    rng = np.random.default_rng(seed)
    d = true_features.shape[1]
    results = [recovery(rng.standard_normal((n_latents, d)), true_features, threshold) for _ in range(draws)]
    return {
        "gt_mean_max_cos": float(np.mean([r["gt_mean_max_cos"] for r in results])),
        "gt_frac_recovered": float(np.mean([r["gt_frac_recovered"] for r in results])),
    }


def order_latents_by_feature(cos: np.ndarray) -> np.ndarray:
    """Latent order for a heatmap: by best-matching true feature, then by strength of that match."""
    absval = np.abs(cos)
    best_feature = absval.argmax(axis=1)
    strength = absval.max(axis=1)
    return np.lexsort((-strength, best_feature))


def gt_mcc(decoder_rows: np.ndarray, true_features: np.ndarray) -> float:
    """``sae_lens.synthetic.mean_correlation_coefficient``: mean |cos| of the Hungarian one-to-one
    matching of decoder rows and true features (saesim.similarity's exact Hungarian, here on a
    numpy float64 |cos| matrix so that the job imports neither torch nor sae-lens)."""
    from saesim.similarity import _hungarian_on

    cos = np.abs(latent_truth_cosines(decoder_rows, true_features))
    if cos.shape[0] > cos.shape[1]:
        cos = np.ascontiguousarray(cos.T)
    return float(_hungarian_on(cos).mean_matched_cos)


def gt_uniqueness(decoder_rows: np.ndarray, true_features: np.ndarray) -> float:
    """``sae_lens.synthetic.feature_uniqueness``: distinct best-|cos| true features per latent."""
    if decoder_rows.shape[0] == 0:
        return 0.0
    best = np.abs(latent_truth_cosines(decoder_rows, true_features)).argmax(axis=1)
    return len(np.unique(best)) / decoder_rows.shape[0]


def classification_metrics(fires_batches, truth_batches, best_matches: np.ndarray) -> dict:
    """``sae_lens.synthetic.ClassificationMetricsCalculator``: each latent as a detector of its
    best-matching true feature; per-latent precision, recall, F1 (0 where undefined), averaged."""
    n = len(best_matches)
    tp, fp, fn = (np.zeros(n, dtype=np.int64) for _ in range(3))
    for fires, truth in zip(fires_batches, truth_batches):
        gt = np.asarray(truth[:, best_matches] > 0)
        tp += (fires & gt).sum(0)
        fp += (fires & ~gt).sum(0)
        fn += (~fires & gt).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0, precision + recall, 1), 0.0)
    if n == 0:
        return {"gt_f1": 0.0, "gt_precision": 0.0, "gt_recall": 0.0}
    return {"gt_f1": float(f1.mean()), "gt_precision": float(precision.mean()), "gt_recall": float(recall.mean())}


def library_metrics(sae_dir, store_path, *, batch_rows: int = 1024, draws: int = 3, seed: int = 0) -> dict:
    """sae-lens's ground-truth metrics (``sae_lens.synthetic``) of one SAE on a synthetic store,
    computed here in numpy without importing sae-lens (a ~6-10 s import per job); equal to the
    library's functions (``tests/test_synthetic.py`` checks).

    ``gt_mcc``: ``mean_correlation_coefficient`` (Hungarian one-to-one over |cos| between decoder
    rows and true features); ``gt_uniqueness``: ``feature_uniqueness``; ``gt_f1`` /
    ``gt_precision`` / ``gt_recall``: each latent as a detector of its best-matching true feature
    (``ClassificationMetricsCalculator``) on the store's first ``truth_rows`` rows, whose true
    feature activations the store keeps. ``chance``: MCC and uniqueness of random Gaussian
    decoders of the same shape (isotropic chance), mean of ``draws``.
    """
    from saesim.stores.activation_store import open_store
    from saesim.errors import SaesimError
    from saesim.sources.synthetic import truth_feature_activations

    with open_store(store_path) as store:
        group = store.group("ground_truth")
        if "truth_indptr" not in group:
            raise SaesimError(f"{store_path}: /ground_truth has no truth_indptr (not a sae_lens.synthetic store; rebuild it)")
        truth = truth_feature_activations(group)
        rows = store.read_rows(0, truth.shape[0]).astype(np.float32)
    features = group["features"].astype(np.float32)
    enc = load_encoder(sae_dir)
    W_dec = enc["W_dec"]
    if W_dec.shape[1] != features.shape[1]:
        raise SaesimError(f"{sae_dir}: SAE d_in={W_dec.shape[1]} does not match the store {store_path} (d={features.shape[1]})")
    best = np.abs(latent_truth_cosines(W_dec, features)).argmax(axis=1)
    starts = range(0, rows.shape[0], batch_rows)
    cls = classification_metrics((encode_fires(enc, rows[s : s + batch_rows]) for s in starts),
                                 (truth[s : s + batch_rows].toarray() for s in starts), best)
    rng = np.random.default_rng(seed)
    rand = [rng.standard_normal(W_dec.shape) for _ in range(draws)]
    return {
        "gt_mcc": gt_mcc(W_dec, features),
        "gt_uniqueness": gt_uniqueness(W_dec, features),
        **cls,
        "gt_rows": int(rows.shape[0]),
        "chance": {
            "gt_mcc": float(np.mean([gt_mcc(r, features) for r in rand])),
            "gt_uniqueness": float(np.mean([gt_uniqueness(r, features) for r in rand])),
        },
    }
