"""Toy data with known ground-truth features (after "Sparse but Wrong", Chanin & Garriga-Alonso 2025).

Each sample is ``sum_i f_i * m_i * w_i`` where ``w_i`` are N unit feature
directions in d dimensions, ``f_i`` is a correlated Bernoulli firing variable
with marginal probability ``p_i`` and ``m_i`` a magnitude around 1.  Firing
correlations come from a Gaussian copula: draw ``z ~ N(0, C)`` and fire feature
``i`` when ``z_i < Phi^-1(p_i)``, so the marginals are exactly ``p_i`` and the
correlation structure follows ``C``.  The true L0 is ``sum_i p_i``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
from scipy.special import ndtri

from .errors import SaesimError

CORRELATIONS = ("none", "positive", "negative", "random")


@dataclass(frozen=True)
class ToyModelConfig:
    n_features: int = 50
    d: int = 100
    p_max: float = 0.39
    p_min: float = 0.05
    magnitude_mean: float = 1.0
    magnitude_std: float = 0.15
    correlation: str = "random"
    correlation_strength: float = 0.3
    orthogonal: bool = True
    data_seed: int = 0

    def __post_init__(self):
        if self.correlation not in CORRELATIONS:
            raise SaesimError(f"toy model correlation must be one of {CORRELATIONS}, got {self.correlation!r}")
        if not 0 < self.p_min <= self.p_max < 1:
            raise SaesimError(f"toy model needs 0 < p_min <= p_max < 1, got p_min={self.p_min}, p_max={self.p_max}")
        if self.orthogonal and self.n_features > self.d:
            raise SaesimError(f"toy model: orthogonal features need n_features <= d ({self.n_features} > {self.d})")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ToyModel:
    """The sampled ground truth: directions, firing probabilities and correlations."""

    config: ToyModelConfig
    features: np.ndarray  # [n_features, d], unit rows
    firing_probabilities: np.ndarray  # [n_features]
    correlation_matrix: np.ndarray  # [n_features, n_features], PSD, unit diagonal

    @property
    def expected_l0(self) -> float:
        return float(self.firing_probabilities.sum())


def linear_firing_probabilities(n: int, p_max: float, p_min: float) -> np.ndarray:
    """Firing probabilities falling linearly from ``p_max`` (feature 0) to ``p_min``."""
    return np.linspace(p_max, p_min, n)


def feature_directions(n: int, d: int, rng: np.random.Generator, orthogonal: bool) -> np.ndarray:
    """``n`` unit directions in ``d`` dims: orthonormal (via QR) or independent Gaussian."""
    g = rng.standard_normal((d, n))
    if orthogonal:
        q, r = np.linalg.qr(g)
        q = q * np.sign(np.diag(r))  # make the decomposition unique
        return np.ascontiguousarray(q.T)
    return (g / np.linalg.norm(g, axis=0)).T.copy()


def nearest_correlation_matrix(c: np.ndarray, min_eig: float = 1e-3) -> np.ndarray:
    """Project a symmetric matrix onto PSD matrices with unit diagonal (eigenvalue clipping)."""
    c = (c + c.T) / 2
    vals, vecs = np.linalg.eigh(c)
    c = (vecs * np.clip(vals, min_eig, None)) @ vecs.T
    s = np.sqrt(np.diag(c))
    c = c / np.outer(s, s)
    np.fill_diagonal(c, 1.0)
    return c


def correlation_matrix(n: int, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Feature-firing correlation matrix.

    ``positive`` / ``negative``: every feature correlates with feature 0 at
    ``+-strength`` (the paper's setup); ``random``: off-diagonal entries uniform in
    ``[-strength, strength]``; ``none``: identity.  Projected to a valid
    correlation matrix.
    """
    c = np.eye(n)
    if kind == "positive":
        c[0, 1:] = c[1:, 0] = strength
    elif kind == "negative":
        c[0, 1:] = c[1:, 0] = -strength
    elif kind == "random":
        upper = rng.uniform(-strength, strength, size=(n, n))
        c = np.triu(upper, 1)
        c = c + c.T + np.eye(n)
    return nearest_correlation_matrix(c)


def make_toy_model(cfg: ToyModelConfig) -> ToyModel:
    rng = np.random.default_rng(cfg.data_seed)
    features = feature_directions(cfg.n_features, cfg.d, rng, cfg.orthogonal)
    probs = linear_firing_probabilities(cfg.n_features, cfg.p_max, cfg.p_min)
    corr = correlation_matrix(cfg.n_features, cfg.correlation, cfg.correlation_strength, rng)
    return ToyModel(cfg, features.astype(np.float32), probs, corr)


def sample_feature_activations(model: ToyModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, n_features]`` float32 feature coefficients ``f_i * m_i`` (zero when not firing)."""
    cfg = model.config
    chol = np.linalg.cholesky(model.correlation_matrix)
    z = rng.standard_normal((n, cfg.n_features)) @ chol.T
    fires = z < ndtri(model.firing_probabilities)
    magnitudes = rng.normal(cfg.magnitude_mean, cfg.magnitude_std, size=(n, cfg.n_features))
    return (fires * np.clip(magnitudes, 0.0, None)).astype(np.float32)


def iter_toy_samples(model: ToyModel, n_rows: int, chunk_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(activations [rows, d], feature_activations [rows, n_features])`` chunks.

    The stream depends only on the model's data seed and ``chunk_rows``.
    """
    rng = np.random.default_rng([model.config.data_seed, 1])
    for start in range(0, n_rows, chunk_rows):
        rows = min(chunk_rows, n_rows - start)
        coeffs = sample_feature_activations(model, rows, rng)
        yield coeffs @ model.features, coeffs


def measured_l0(feature_activations: np.ndarray) -> float:
    """Mean number of firing features per sample."""
    return float((feature_activations > 0).sum(axis=1).mean())


def write_toy_store(path, cfg: ToyModelConfig, n_rows: int, *, chunk_rows: int = 8192, dtype: str = "float32", progress: bool = True) -> dict:
    """Sample the toy model into an activation store with its ground truth; return a summary."""
    from tqdm.auto import tqdm

    from .activation_store import StoreWriter

    model = make_toy_model(cfg)
    fired = 0
    attrs = {"model": "toy", "hook": "toy", "config": cfg.to_dict()}
    with StoreWriter(path, cfg.d, dtype=dtype, chunk_rows=chunk_rows, attrs=attrs) as writer:
        for acts, coeffs in tqdm(iter_toy_samples(model, n_rows, chunk_rows), total=-(-n_rows // chunk_rows), desc="toy samples", disable=not progress):
            writer.append(acts)
            fired += int((coeffs > 0).sum())
        true_l0 = fired / n_rows
        writer.add_group(
            "ground_truth",
            {
                "features": model.features,
                "firing_probabilities": model.firing_probabilities,
                "correlation_matrix": model.correlation_matrix,
            },
            attrs={"true_l0": true_l0, "expected_l0": model.expected_l0},
        )
        writer.attrs["true_l0"] = true_l0
    return {"n_rows": n_rows, "d": cfg.d, "n_features": cfg.n_features, "true_l0": true_l0, "expected_l0": model.expected_l0}
