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
