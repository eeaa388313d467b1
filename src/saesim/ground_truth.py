"""How well an SAE's decoder recovers known ground-truth feature directions."""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


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


def library_metrics(sae_dir, store_path, *, batch_rows: int = 1024, draws: int = 3, seed: int = 0) -> dict:
    """sae-lens's own ground-truth metrics of one SAE on a synthetic store (``sae_lens.synthetic``).

    ``gt_mcc``: ``mean_correlation_coefficient`` (Hungarian one-to-one over |cos| between decoder
    rows and true features); ``gt_uniqueness``: ``feature_uniqueness``; ``gt_f1`` /
    ``gt_precision`` / ``gt_recall``: each latent as a detector of its best-matching true feature
    (``ClassificationMetricsCalculator``) on the store's first ``truth_rows`` rows, whose true
    feature activations the store keeps. ``chance``: MCC and uniqueness of random Gaussian
    decoders of the same shape (isotropic chance), mean of ``draws``.
    """
    import torch
    from sae_lens import SAE
    from sae_lens.synthetic import ClassificationMetricsCalculator, feature_uniqueness, mean_correlation_coefficient

    from .activation_store import open_store
    from .errors import SaesimError
    from .synthetic import truth_feature_activations

    with open_store(store_path) as store:
        group = store.group("ground_truth")
        if "truth_indptr" not in group:
            raise SaesimError(f"{store_path}: /ground_truth has no truth_indptr (not a sae_lens.synthetic store; rebuild it)")
        truth = truth_feature_activations(group)
        rows = store.read_rows(0, truth.shape[0]).astype(np.float32)
    features = torch.from_numpy(group["features"].astype(np.float32))
    sae = SAE.load_from_disk(str(sae_dir), device="cpu")
    W_dec = sae.W_dec.detach().float()
    if W_dec.shape[1] != features.shape[1]:
        raise SaesimError(f"{sae_dir}: SAE d_in={W_dec.shape[1]} does not match the store {store_path} (d={features.shape[1]})")
    calc = ClassificationMetricsCalculator(W_dec, features)
    with torch.no_grad():
        for start in range(0, rows.shape[0], batch_rows):
            x = torch.from_numpy(rows[start : start + batch_rows])
            calc.add_batch(sae.encode(x), torch.from_numpy(truth[start : start + batch_rows].toarray()))
    cls = calc.compute()
    gen = torch.Generator().manual_seed(seed)
    rand = [torch.randn(W_dec.shape, generator=gen) for _ in range(draws)]
    return {
        "gt_mcc": mean_correlation_coefficient(W_dec, features),
        "gt_uniqueness": feature_uniqueness(W_dec, features),
        "gt_f1": cls.f1_score,
        "gt_precision": cls.precision,
        "gt_recall": cls.recall,
        "gt_rows": int(rows.shape[0]),
        "chance": {
            "gt_mcc": float(np.mean([mean_correlation_coefficient(r, features) for r in rand])),
            "gt_uniqueness": float(np.mean([feature_uniqueness(r, features) for r in rand])),
        },
    }
