"""Did two SAEs start from the same initialisation? An index-aligned test.

Two SAEs initialised from the same random draw (the same torch seed, a shared k-means
dictionary, sparsify's ``init_seeds`` shared across hookpoints) keep latent i of one
close to latent i of the other for a long time, whatever data they then see; SAEs
initialised independently have no reason to pair latents by index. Their cross-seed
agreement then measures the shared start ("stability" without "stabilization":
Brzozowski & Chung 2026, "Ablating Archetypes", arXiv 2606.02061).

Statistic: the index-aligned mean signed cosine
``T = (1/n) sum_i cos(A[i], B[i])`` of two decoders of the same shape ``[n, d]``.
Null: the permutation null ``T_pi = (1/n) sum_i cos(A[i], B[pi(i)])`` over uniformly
random permutations ``pi`` (what T would be if the index pairing carried no
information). Its mean is exact, ``E[T_pi] = abar . bbar`` (the mean unit rows of
A and B dotted); its standard deviation is estimated from ``n_perm`` random
permutations; by Hoeffding's combinatorial central limit theorem T_pi is close to
normal, so ``z = (T - E[T_pi]) / sd(T_pi)`` is read on the standard normal scale.
The pair is flagged when ``z >= z_threshold`` (default 6: a false alarm has
probability about 1e-9 per pair) and T exceeds every permuted value drawn.

Memory: one unit-normalised float32 copy of each decoder (``2 n d`` x 4 bytes) and
one row chunk of products; time ``O(n_perm n d)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saesim.errors import SaesimError
from saesim.similarity.geometry import unit_rows

#: z-score (index-aligned mean cos above its permutation null) at which two SAEs are flagged
DEFAULT_Z_THRESHOLD = 6.0
#: random permutations behind the null's standard deviation
DEFAULT_N_PERM = 200


def _aligned_mean(A: np.ndarray, B: np.ndarray, perm: np.ndarray | None = None, chunk: int = 8192) -> float:
    total = 0.0
    for s in range(0, len(A), chunk):
        b = B[s : s + chunk] if perm is None else B[perm[s : s + chunk]]
        total += float(np.einsum("ij,ij->", A[s : s + chunk], b, dtype=np.float64))
    return total / len(A)


def shared_init_test(
    dec_a: Any,
    dec_b: Any,
    *,
    n_perm: int = DEFAULT_N_PERM,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
    seed: int = 0,
) -> dict[str, Any]:
    """The index-aligned mean cos of two decoders against its permutation null.

    Returns a JSON-able dict: ``aligned_mean_cos`` (T), ``null_mean`` (exact),
    ``null_std`` and ``null_max`` (from ``n_perm`` permutations), ``z``, ``p_value``
    (permutation, ``(1 + #{T_pi >= T}) / (1 + n_perm)``), ``shared_init`` (the flag)
    and the settings. Decoders of different shapes cannot share an initialisation:
    ``shared_init`` is False with ``reason`` set.
    """
    A = unit_rows(dec_a, np.float32)
    B = unit_rows(dec_b, np.float32)
    if A.ndim != 2 or B.ndim != 2:
        raise SaesimError(f"decoders must be 2-D [latents, d], got shapes {A.shape} and {B.shape}")
    base = {"n_perm": int(n_perm), "z_threshold": float(z_threshold), "null": "permutation of B's latent indices"}
    if A.shape != B.shape or len(A) < 2:
        return {**base, "aligned_mean_cos": None, "null_mean": None, "null_std": None, "null_max": None, "z": None,
                "p_value": None, "shared_init": False, "reason": f"shapes {A.shape} and {B.shape} differ"}
    if n_perm < 2:
        raise SaesimError(f"n_perm must be at least 2, got {n_perm}")
    obs = _aligned_mean(A, B)
    null_mean = float(A.mean(0, dtype=np.float64) @ B.mean(0, dtype=np.float64))
    rng = np.random.default_rng(seed)
    draws = np.array([_aligned_mean(A, B, rng.permutation(len(A))) for _ in range(n_perm)])
    std = float(draws.std(ddof=1))
    z = (obs - null_mean) / std if std > 0 else (np.inf if obs > null_mean else 0.0)
    flagged = bool(z >= z_threshold and obs > draws.max())
    return {
        **base,
        "aligned_mean_cos": obs,
        "null_mean": null_mean,
        "null_std": std,
        "null_max": float(draws.max()),
        "z": float(z),
        "p_value": float((1 + np.sum(draws >= obs)) / (1 + n_perm)),
        "shared_init": flagged,
        "reason": None,
    }


def shared_init_warning(res: dict[str, Any], a: str = "A", b: str = "B") -> str | None:
    """One warning line for a flagged pair (None when not flagged)."""
    if not res.get("shared_init"):
        return None
    return (
        f"WARNING: {a} and {b} look like they started from the same initialisation: index-aligned mean "
        f"cos(W_A[i], W_B[i]) = {res['aligned_mean_cos']:.3f} against {res['null_mean']:.3f} +- {res['null_std']:.3f} "
        f"with the latent indices permuted (z = {res['z']:.1f}); their agreement may reflect the shared start, "
        "not features learned independently"
    )
