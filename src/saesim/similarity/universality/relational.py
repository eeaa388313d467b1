"""Relational similarity of two paired sets of vectors, against random pairings.

``x [n, d_x]`` and ``y [n, d_y]`` are paired row by row: row i of x goes with
row i of y.  For SAEs the rows are the decoder rows of paired latents; for raw
model activations (neuron space) the rows are tokens.  Measures:

* **SVCCA** (Raghu et al. 2017): center each column, keep the top singular
  directions explaining ``variance_kept`` of the variance (or a fixed number),
  then CCA; the value is the mean canonical correlation.  With orthonormal
  bases ``U_x``, ``U_y`` of the reduced spaces the canonical correlations are
  the singular values of ``U_x^T U_y``.  Only meaningful when ``n`` is well
  above the kept dimensions (otherwise it is near 1 for any pairing; the null
  shows it).
* **RSA**: Spearman correlation between the upper triangles of the two
  cosine-dissimilarity matrices ``1 - cos(row_i, row_j)``.
* **Mutual kNN**: mean over rows of the Jaccard index between the row's k
  nearest neighbours (cosine) in x and in y.  Rows with zero norm in x or in y
  (no direction, e.g. toy rows with no active feature) are left out, and ties
  are broken at random (seeded), separately for x and y: broken by row index,
  tied rows got the same neighbour sets in x and y under the given pairing but
  not under a permuted one, a false positive on independent data.
* **Linear CKA** (Kornblith et al. 2019): ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)``.

Null distribution: the same measure after randomly permuting the rows of y
(random pairings with the same marginals), ``n_null`` times; the p-value is
``(1 + #{null >= observed}) / (1 + n_null)``.  Each measure is prepared once
so that a permutation costs only an index gather or a small product.

Cost bound: rows are subsampled (seeded) to ``max_rows`` (default 4096), and
RSA, whose cost is quadratic, to ``rsa_max_rows`` (default 2000) of those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from scipy.stats import rankdata

from saesim.errors import SaesimError
from saesim.similarity.geometry import unit_rows

METRICS = ("svcca", "rsa", "mutual_knn", "cka")
"""The relational measures, in the order results and tables list them."""

Scorer = Callable[[np.ndarray | None], float]


@dataclass(frozen=True)
class NullComparison:
    """A measure on the given pairing and on ``n_null`` random pairings."""

    value: float
    null_mean: float
    null_std: float
    p_value: float  # (1 + #{null >= value}) / (1 + n_null)
    n_null: int
    n_rows: int

    def as_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in asdict(self).items()}


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value ``(1 + #{null >= observed}) / (1 + len(null))``."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise SaesimError(f"paired matrices must be 2-D with the same number of rows, got {x.shape} and {y.shape}")
    if x.shape[0] < 3:
        raise SaesimError(f"need at least 3 paired rows for relational similarity, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise SaesimError("paired matrices contain NaN or inf")
    return x, y


# --- SVCCA -----------------------------------------------------------------


def top_directions(x: np.ndarray, variance_kept: float = 0.99, n_components: int | None = None) -> np.ndarray:
    """Orthonormal ``[n, k]`` basis of the column-centered x's top-k left singular directions.

    k is ``n_components`` if given, else the fewest directions explaining
    ``variance_kept`` of the variance; directions with zero singular value are dropped.
    """
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    rank = int(np.count_nonzero(s > s[0] * max(xc.shape) * np.finfo(float).eps)) if s.size and s[0] > 0 else 0
    if rank == 0:
        raise SaesimError("SVCCA: a paired matrix has no variance")
    if n_components is not None:
        k = min(int(n_components), rank)
    else:
        var = np.cumsum(s[:rank] ** 2) / np.sum(s[:rank] ** 2)
        k = min(int(np.searchsorted(var, variance_kept - 1e-12)) + 1, rank)
    return u[:, :k]


def _prepare_svcca(x, y, *, variance_kept=0.99, n_components=None) -> Scorer:
    ux = top_directions(x, variance_kept, n_components)
    uy = top_directions(y, variance_kept, n_components)

    def score(perm):
        vy = uy if perm is None else uy[perm]
        m = ux.T @ vy  # canonical correlations = singular values of m
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        eig = np.linalg.eigvalsh(gram)  # squared singular values (a small symmetric problem)
        return float(np.mean(np.sqrt(np.clip(eig, 0.0, 1.0))))

    return score


def svcca(x, y, *, variance_kept: float = 0.99, n_components: int | None = None) -> float:
    """Mean canonical correlation between the SVD-reduced x and y (see module doc)."""
    x, y = _check_pair(x, y)
    return _prepare_svcca(x, y, variance_kept=variance_kept, n_components=n_components)(None)


# --- RSA -------------------------------------------------------------------


def _prepare_rsa(x, y) -> Scorer:
    n = x.shape[0]
    iu, ju = np.triu_indices(n, 1)

    def standardized_ranks(m):
        u = unit_rows(m, dtype=None)
        dis = 1.0 - u @ u.T
        r = rankdata(dis[iu, ju])
        r -= r.mean()
        sd = r.std()
        return r / sd if sd > 0 else r

    zx = standardized_ranks(x)
    zy_vec = standardized_ranks(y)
    zy = np.zeros((n, n))
    zy[iu, ju] = zy_vec
    zy[ju, iu] = zy_vec
    del zy_vec
    m = zx.size
    zy_flat = zy.ravel()

    def score(perm):
        p = np.arange(n) if perm is None else perm
        vy = np.take(zy_flat, p[iu] * n + p[ju])
        return float(np.dot(zx, vy) / m)

    return score


def rsa(x, y) -> float:
    """Spearman correlation of the upper triangles of the cosine-dissimilarity matrices."""
    x, y = _check_pair(x, y)
    return _prepare_rsa(x, y)(None)


# --- mutual kNN ------------------------------------------------------------


def knn_indices(x: np.ndarray, k: int, block_rows: int = 1024, rng: np.random.Generator | None = None) -> np.ndarray:
    """``[n, k]`` indices of each row's k nearest other rows by cosine similarity.

    With ``rng``, ties are broken at random: the neighbours are found among the rows
    in a random order and mapped back, so the result does not favour low row indices.
    """
    n = x.shape[0]
    if not 0 < k < n:
        raise SaesimError(f"mutual kNN: k must be in [1, {n - 1}] for {n} rows, got {k}")
    if rng is not None:
        order = rng.permutation(n)
        return order[knn_indices(x[order], k, block_rows)][np.argsort(order)]
    u = unit_rows(x, dtype=None)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block_rows):
        sims = u[s : s + block_rows] @ u.T
        sims[np.arange(sims.shape[0]), np.arange(s, s + sims.shape[0])] = -np.inf
        out[s : s + block_rows] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def directional_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the paired rows with a direction (nonzero norm) in both x and y."""
    return np.flatnonzero((np.linalg.norm(x, axis=1) > 0) & (np.linalg.norm(y, axis=1) > 0))


def _prepare_knn(x, y, *, k=10, rng: np.random.Generator | None = None) -> Scorer:
    """Scorer on rows that all have a direction (see :func:`directional_rows`); ties broken
    with ``rng`` (independent orders for x and y), by position without it."""
    nx = knn_indices(x, k, rng=rng)
    ny = knn_indices(y, k, rng=rng)
    n = x.shape[0]

    def score(perm):
        if perm is None:
            mapped = ny
        else:
            inverse = np.empty(n, dtype=np.int64)
            inverse[perm] = np.arange(n)
            mapped = inverse[ny[perm]]  # y-neighbours of row i's partner, as x-row ids
        inter = (nx[:, :, None] == mapped[:, None, :]).sum(axis=(1, 2))
        return float(np.mean(inter / (2 * k - inter)))

    return score


def mutual_knn_jaccard(x, y, *, k: int = 10, seed: int = 0) -> float:
    """Mean Jaccard index of each row's k-nearest-neighbour sets in x and in y, over the rows
    with nonzero norm in both; ties broken at random with ``seed``."""
    x, y = _check_pair(x, y)
    rows = _knn_rows(x, y, np.arange(x.shape[0]))
    return _prepare_knn(x[rows], y[rows], k=k, rng=np.random.default_rng([seed, 1]))(None)


def _knn_rows(x, y, rows: np.ndarray) -> np.ndarray:
    """``rows`` without those that have no direction in x or y; at least 3 must remain."""
    kept = rows[directional_rows(x[rows], y[rows])]
    if kept.size < 3:
        raise SaesimError(
            f"mutual kNN: only {kept.size} of {rows.size} paired rows have a nonzero norm on both sides (need 3)"
        )
    return kept


# --- linear CKA ------------------------------------------------------------


def _prepare_cka(x, y) -> Scorer:
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    n, dx, dy = xc.shape[0], xc.shape[1], yc.shape[1]
    if dx * dy <= 16 * n:  # feature form: n dx dy flops per pairing
        denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)

        def score(perm):
            vy = yc if perm is None else yc[perm]
            return float(np.linalg.norm(vy.T @ xc) ** 2 / denom) if denom > 0 else 0.0

        return score
    kx = xc @ xc.T  # Gram form: n^2 per pairing
    ky = yc @ yc.T
    denom = np.linalg.norm(kx) * np.linalg.norm(ky)

    def score(perm):
        vy = ky if perm is None else ky[np.ix_(perm, perm)]
        return float(np.sum(kx * vy) / denom) if denom > 0 else 0.0

    return score


def linear_cka(x, y) -> float:
    """Linear centered kernel alignment of x and y (rows paired)."""
    x, y = _check_pair(x, y)
    return _prepare_cka(x, y)(None)


# --- against the null ------------------------------------------------------


def relational_similarity(
    x: np.ndarray,
    y: np.ndarray,
    *,
    metrics: tuple[str, ...] = METRICS,
    n_null: int = 100,
    seed: int = 0,
    max_rows: int = 4096,
    rsa_max_rows: int = 2000,
    knn_k: int = 10,
    variance_kept: float = 0.99,
    n_components: int | None = None,
) -> dict[str, NullComparison]:
    """Each measure on the pairing ``x[i] <-> y[i]`` and on ``n_null`` random pairings.

    Rows are subsampled (seeded) to ``max_rows``, and to ``rsa_max_rows`` for RSA;
    each measure's permutations come from its own seeded stream.
    """
    x, y = _check_pair(x, y)
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise SaesimError(f"unknown relational metric(s) {sorted(unknown)}; known: {list(METRICS)}")
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    sub = np.sort(rng.permutation(n)[:max_rows]) if n > max_rows else np.arange(n)
    out = {}
    for index, name in enumerate(METRICS):
        if name not in metrics:
            continue
        rows = sub
        if name == "rsa" and rows.size > rsa_max_rows:
            rows = np.sort(np.random.default_rng([seed, 99]).permutation(rows)[:rsa_max_rows])
        if name == "mutual_knn":
            rows = _knn_rows(x, y, rows)
        xs, ys = x[rows], y[rows]
        if name == "svcca":
            scorer = _prepare_svcca(xs, ys, variance_kept=variance_kept, n_components=n_components)
        elif name == "rsa":
            scorer = _prepare_rsa(xs, ys)
        elif name == "mutual_knn":
            scorer = _prepare_knn(xs, ys, k=min(knn_k, rows.size - 1), rng=np.random.default_rng([seed, index, 1]))
        else:
            scorer = _prepare_cka(xs, ys)
        observed = scorer(None)
        perm_rng = np.random.default_rng([seed, index])
        null = np.array([scorer(perm_rng.permutation(rows.size)) for _ in range(n_null)])
        out[name] = NullComparison(
            value=observed,
            null_mean=float(null.mean()) if n_null else float("nan"),
            null_std=float(null.std(ddof=1)) if n_null > 1 else float("nan"),
            p_value=permutation_p_value(observed, null),
            n_null=n_null,
            n_rows=int(rows.size),
        )
    return out
