"""Which latents replicate: per-latent statistics, reappearance, the stable share, unstable subspaces.

Definitions (docs/per-latent.md states them with the artifact format):

* **frequency** of latent ``i``: the fraction of evaluation rows on which it is non-zero;
  **mean activation when active**: the mean of its non-zero activations (NaN if it never fires).
* **EV share** (exact additive split of the SAE's explained variance). With ``x`` a row,
  ``x_hat = sum_i a_i d_i + b_dec`` the reconstruction, ``r = x - x_hat`` and ``x_bar`` the mean row,
  the explained sum of squares ``ESS = SST - SSE = sum_rows <x_hat - x_bar, x - x_bar + r>``
  splits exactly into ``ESS_i = sum_rows a_i <d_i, x - x_bar + r>`` (one per latent) plus the
  bias term ``<b_dec - x_bar, sum_rows r>``. ``ev_i = ESS_i / SST`` (the latent's part of the
  explained-variance fraction) and ``ev_share_i = ESS_i / sum_j ESS_j`` (shares sum to 1; a
  latent whose contribution points against the data gets a negative share).
* **best partner** of latent ``i`` in another seed: the latent with the largest decoder |cos|
  (from the bounded scan, :mod:`saesim.similarity.scan`); **Hungarian partner**: its partner in
  the one-to-one matching (:mod:`saesim.similarity.matching`).
* **reappearance probability** at threshold ``t``: the fraction of the other seeds in which the
  best partner has |cos| >= ``t``. **Stable**: reappears in every other seed; **stable_half**: in
  at least half of them.
* **unstable subspace** of an SAE: the top-``r`` right singular vectors of its unstable latents'
  decoder rows, each scaled to its contribution's RMS norm (``sqrt(mean_rows a_i^2) * d_i``), so
  dead and weak latents weigh little. **Agreement** of two subspaces of ranks ``r_a``, ``r_b``:
  ``tr(P_a P_b) / min(r_a, r_b)``, the mean squared cosine of the principal angles; for
  isotropically random subspaces its expectation is ``max(r_a, r_b) / d`` (``r / d`` for equal ranks).

Memory bounds: :func:`latent_stats` holds one ``[chunk_rows, n_latents]`` float32 block of
activations (``chunk_rows`` is chosen so a few such blocks fit ``memory_budget_mb``: 341 rows at
65,536 latents and 256 MB), its non-zero entries as CSR (``rows * L0``), ``[chunk_rows, d]``
reconstructions and O(n_latents) float64 accumulators; the decoder is read, never copied. Partners come from the bounded scan
(its own budget). Subspaces are at most ``d x d``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from saesim.errors import SaesimError
from saesim.registry.intervals import interval_stats
from saesim.registry.metrics import COORDINATE_SPACES, per_latent_metrics

#: fixed thresholds reported beside the calibrated one
FIXED_THRESHOLDS = (0.7, 0.9)
#: quantile of the null SAEs' best-match |cos| that calibrates the threshold
NULL_QUANTILE = 0.99
#: the threshold used when a variant has no trained null to calibrate against
FALLBACK_THRESHOLD = 0.7


# --------------------------------------------------------------------------
# One streaming pass: frequency, mean activation, EV share
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentStats:
    """Per-latent statistics of one SAE over a set of rows (see the module's definitions)."""

    n_rows: int
    count: np.ndarray  # int64 [n]: rows on which the latent fires
    act_sum: np.ndarray  # float64 [n]: sum of its activations
    act_sq_sum: np.ndarray  # float64 [n]: sum of its squared activations
    ess: np.ndarray  # float64 [n]: its part of the explained sum of squares
    ess_bias: float  # the decoder bias's part
    sst: float  # total sum of squares about the mean row
    sse: float  # residual sum of squares

    @property
    def frequency(self) -> np.ndarray:
        return self.count / max(self.n_rows, 1)

    @property
    def mean_active(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.act_sum / np.maximum(self.count, 1), np.nan)

    @property
    def explained_variance(self) -> float:
        return 1.0 - self.sse / self.sst

    @property
    def ev(self) -> np.ndarray:
        """Each latent's part of the explained-variance fraction (sums with the bias's to EV)."""
        return self.ess / self.sst

    @property
    def ev_share(self) -> np.ndarray:
        """Each latent's share of the latents' explained sum of squares (sums to 1)."""
        total = self.ess.sum()
        return self.ess / total if total != 0 else np.full_like(self.ess, np.nan)

    @property
    def rms_contribution(self) -> np.ndarray:
        """sqrt(mean over rows of a_i^2): the RMS size of its activation (decoder norm not included)."""
        return np.sqrt(self.act_sq_sum / max(self.n_rows, 1))


def chunk_rows_for(n_latents: int, memory_budget_mb: float, max_rows: int = 4096) -> int:
    """Rows per block so that a few ``[rows, n_latents]`` float32 blocks fit the budget."""
    per_row = 3 * 4 * max(n_latents, 1)
    return int(max(1, min(max_rows, (memory_budget_mb * 2**20) // per_row)))


def latent_stats(
    encode: Callable[[Any], Any],
    W_dec: np.ndarray,
    b_dec: np.ndarray | None,
    blocks: Iterable[np.ndarray],
    *,
    memory_budget_mb: float = 256,
) -> LatentStats:
    """One pass over ``blocks`` (float32 ``[rows, d]`` arrays) of an SAE with encoder ``encode``
    (torch ``[rows, d]`` -> ``[rows, n]`` activations) and decoder ``W_dec`` ``[n, d]``, ``b_dec``.

    The reconstruction is ``a @ W_dec + b_dec`` (what sae-lens's ``decode`` computes for SAEs
    without output normalisation), built from the non-zero activations only (CSR products). The
    caller sizes the blocks (:func:`chunk_rows_for`).
    """
    import torch

    W = torch.from_numpy(np.ascontiguousarray(W_dec, dtype=np.float32))
    n, d = W.shape
    b = torch.zeros(d) if b_dec is None else torch.from_numpy(np.asarray(b_dec, dtype=np.float32).reshape(d))
    band = int(max(1024, (memory_budget_mb * 2**20) // (3 * 8 * d)))  # decoder rows per float64 band
    count = torch.zeros(n, dtype=torch.int64)
    act_sum = torch.zeros(n, dtype=torch.float64)
    sq_sum = torch.zeros(n, dtype=torch.float64)
    s_xr = torch.zeros(n, dtype=torch.float64)  # sum a_i <d_i, x + r>
    x_sum = torch.zeros(d, dtype=torch.float64)
    x_sq = 0.0
    r_sum = torch.zeros(d, dtype=torch.float64)
    sse = 0.0
    rows = 0
    with torch.no_grad():
        for block in blocks:
            if len(block) == 0:
                continue
            x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
            a = encode(x)
            if a.shape != (x.shape[0], n):
                raise SaesimError(f"encoder gave activations of shape {tuple(a.shape)}, expected {(x.shape[0], n)}")
            # the non-zero activations as CSR: the reconstruction and <d_i, x + r> at every non-zero
            # entry without a dense [rows, n] x [n, d] product (O(nnz * d), nnz = rows * L0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                csr = a.to_sparse_csr()
                x_hat = torch.sparse.mm(csr, W) + b
                r = x - x_hat
                dots = torch.sparse.sampled_addmm(csr, x + r, W.T, beta=0.0, alpha=1.0).values()
            vals, li = csr.values(), csr.col_indices()
            s_xr.index_add_(0, li, (vals.double() * dots.double()))
            count += torch.bincount(li, minlength=n)
            act_sum.index_add_(0, li, vals.double())
            sq_sum.index_add_(0, li, (vals.double() ** 2))
            xd = x.double()
            x_sum += xd.sum(0)
            x_sq += float((xd**2).sum())
            r_sum += r.double().sum(0)
            sse += float((r.double() ** 2).sum())
            rows += x.shape[0]
    if rows == 0:
        raise SaesimError("per-latent statistics: no rows")
    x_bar = x_sum / rows
    sst = x_sq - float((x_sum**2).sum()) / rows
    if not sst > 0:
        raise SaesimError(f"per-latent statistics: the {rows} rows have zero variance")
    # <d_i, x_bar> in float64, a band of decoder rows at a time (no float64 copy of W_dec)
    proj = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, band):
        proj[s : s + band] = W[s : s + band].double() @ x_bar
    ess = s_xr - act_sum * proj
    ess_bias = float((b.double() - x_bar) @ r_sum)
    return LatentStats(
        n_rows=rows,
        count=count.numpy(),
        act_sum=act_sum.numpy(),
        act_sq_sum=sq_sum.numpy(),
        ess=ess.numpy(),
        ess_bias=ess_bias,
        sst=float(sst),
        sse=float(sse),
    )


# --------------------------------------------------------------------------
# Partners, threshold, reappearance
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PairPartners:
    """Best and Hungarian partners of two SAEs' latents, both directions."""

    best_b_for_a: np.ndarray
    best_cos_a: np.ndarray
    best_a_for_b: np.ndarray
    best_cos_b: np.ndarray
    hung_b_for_a: np.ndarray  # -1 where unmatched
    hung_cos_a: np.ndarray  # NaN where unmatched
    hung_a_for_b: np.ndarray
    hung_cos_b: np.ndarray
    exact: bool


def pair_partners(dec_a: Any, dec_b: Any, *, memory_budget_mb: float = 1024, device: str = "cpu") -> PairPartners:
    """Both SAEs' best partners and the one-to-one matching, from one dense matrix or one bounded
    scan (saesim.similarity.matching's own choice; no new full-matrix scan)."""
    from saesim.similarity.matching import _max_and_matching
    from saesim.similarity.scan import DEFAULT_TOP_M, _as_matrix, _check_pair

    a = _as_matrix(dec_a, "A decoder")
    b = _as_matrix(dec_b, "B decoder")
    _check_pair(a, b)
    mx, m = _max_and_matching(a, b, memory_budget_mb, DEFAULT_TOP_M, device)
    hb = np.full(b.shape[0], -1, dtype=np.int64)
    hb[m.cols] = m.rows
    hcb = np.full(b.shape[0], np.nan, dtype=np.float32)
    hcb[m.cols] = m.cos
    return PairPartners(
        best_b_for_a=np.asarray(mx.best_b_for_a, dtype=np.int64),
        best_cos_a=np.asarray(mx.best_cos_a, dtype=np.float32),
        best_a_for_b=np.asarray(mx.best_a_for_b, dtype=np.int64),
        best_cos_b=np.asarray(mx.best_cos_b, dtype=np.float32),
        hung_b_for_a=m.partner_of_a(),
        hung_cos_a=m.cos_of_a(),
        hung_a_for_b=hb,
        hung_cos_b=hcb,
        exact=bool(m.exact),
    )


def null_threshold(best_cos: Sequence[np.ndarray], quantile: float = NULL_QUANTILE) -> float:
    """The ``quantile`` of the null SAEs' best-match |cos| (all directions of all null pairs pooled)."""
    vals = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in best_cos]) if len(best_cos) else np.array([])
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        raise SaesimError("null threshold: no best-match |cos| of null SAEs to calibrate on")
    return float(np.quantile(vals, quantile))


def reappearance(best_cos: np.ndarray, t: float) -> np.ndarray:
    """``best_cos`` [n_latents, n_other_seeds]: the fraction of the other seeds with best |cos| >= t."""
    best_cos = np.asarray(best_cos, dtype=np.float64)
    if best_cos.ndim != 2 or best_cos.shape[1] == 0:
        raise SaesimError(f"reappearance needs best |cos| to at least one other seed, shape [n, seeds]; got {best_cos.shape}")
    return (best_cos >= t).mean(axis=1)


def stable_masks(reappear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reappears in every other seed, reappears in at least half of them)."""
    r = np.asarray(reappear, dtype=np.float64)
    return r >= 1.0 - 1e-9, r >= 0.5 - 1e-9


def set_summary(mask: np.ndarray, stats: LatentStats) -> dict[str, float]:
    """Fraction of latents in ``mask`` and the share of explained variance and firing mass they carry."""
    mask = np.asarray(mask, dtype=bool)
    total_count = stats.count.sum()
    share = stats.ev_share
    return {
        "frac": float(mask.mean()) if mask.size else float("nan"),
        "ev_share": float(share[mask].sum()) if np.isfinite(share).all() else float("nan"),
        "firing_share": float(stats.count[mask].sum() / total_count) if total_count else float("nan"),
    }


def random_reappearance(t: float, n_latents: int, d: int, n_other: int) -> dict[str, float]:
    """Reappearance for random (isotropic Gaussian) decoders: P(best |cos| >= t among n_latents
    random unit rows) ``p`` per other seed (closed form); stable in all ``n_other`` seeds ``p^n_other``
    (the seeds are independent), in at least half: the binomial tail."""
    from math import comb

    from saesim.similarity.baseline import _p_best_above

    p = _p_best_above(float(t), int(n_latents), int(d))
    need = int(np.ceil(0.5 * n_other - 1e-9))
    half = sum(comb(n_other, j) * p**j * (1 - p) ** (n_other - j) for j in range(need, n_other + 1))
    return {"reappear_mean": p, "frac_stable": p**n_other, "frac_stable_half": float(half)}


# --------------------------------------------------------------------------
# Subspaces
# --------------------------------------------------------------------------


def weighted_subspace(rows: np.ndarray, weights: np.ndarray, rank: int) -> np.ndarray:
    """Orthonormal basis ``[d, r]`` of the top-``rank`` right singular vectors of
    ``weights[:, None] * unit(rows)`` (r is at most the numerical rank)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise SaesimError(f"subspace: rows must be [n, d], got {rows.shape}")
    d = rows.shape[1]
    if rows.shape[0] == 0 or rank <= 0:
        return np.zeros((d, 0))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    m = unit * np.asarray(weights, dtype=np.float64)[:, None]
    # the d x d Gram matrix keeps memory at O(d^2) for any number of rows
    gram = m.T @ m
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    tol = max(evals[0], 0.0) * d * np.finfo(np.float64).eps * 10 if len(evals) else 0.0
    r = int(min(rank, (evals > tol).sum()))
    basis = evecs[:, :r]
    # a deterministic sign per column (eigh's signs are arbitrary)
    flip = np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(r)])
    return basis * np.where(flip == 0, 1.0, flip)


def principal_cosines(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the spans of two orthonormal bases ``[d, r]``, descending."""
    if qa.shape[1] == 0 or qb.shape[1] == 0:
        return np.zeros(0)
    s = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.clip(s, 0.0, 1.0)


def subspace_agreement(qa: np.ndarray, qb: np.ndarray) -> float:
    """``tr(P_a P_b) / min(r_a, r_b)``: the mean squared cosine of the principal angles (1: one
    span contains the other; 0: orthogonal). NaN when either is empty."""
    r = min(qa.shape[1], qb.shape[1])
    if r == 0:
        return float("nan")
    return float((principal_cosines(qa, qb) ** 2).sum() / r)


def random_subspace_chance(r_a: int, r_b: int, d: int) -> float:
    """Expected agreement of two independent isotropically random subspaces of ranks ``r_a``, ``r_b``
    in R^d: ``E tr(P_a P_b) = r_a r_b / d``, divided by ``min(r_a, r_b)``: ``max(r_a, r_b) / d``."""
    if min(r_a, r_b) <= 0:
        return float("nan")
    return float(max(r_a, r_b) / d)


def subspace_rank(n_unstable_a: int, n_unstable_b: int, d: int, fraction: float) -> int:
    """The rank compared: at most ``fraction * d`` (a span of more than d latents is all of R^d and
    would agree trivially), at most the fewer unstable latents of the two."""
    return int(max(0, min(n_unstable_a, n_unstable_b, int(np.floor(fraction * d)))))


# --------------------------------------------------------------------------
# One variant: every SAE's per-latent table, pair rows and the variant's summary
# --------------------------------------------------------------------------

#: per-SAE numbers summarised per variant (saesim.registry.metrics.per_latent_metrics, per="sae"); interval over SAEs
SAE_QUANTITIES = tuple(m.name for m in per_latent_metrics() if m.per == "sae")
#: per-pair numbers summarised per variant (per="pair"); interval over seed pairs
PAIR_QUANTITIES = tuple(m.name for m in per_latent_metrics() if m.per == "pair")
DEFAULT_SUBSPACE_FRACTION = 0.25


@dataclass
class VariantAnalysis:
    threshold: float
    threshold_source: str  # "null_q0.99" or "fixed"
    tables: dict  # (role, seed) -> {name: array} (the per-SAE artifact's datasets)
    sae_rows: list  # dicts
    pair_rows: list  # dicts
    spectra: dict  # (role, a, b) -> principal cosines, descending
    #: non-raw coordinate space -> {"threshold", "threshold_source", "dim"} (empty without moments)
    spaces: dict = field(default_factory=dict)


def _pairs(seeds: Sequence) -> list[tuple]:
    s = list(seeds)
    return [(s[i], s[j]) for i in range(len(s)) for j in range(i + 1, len(s))]


def _all_partners(decoders: dict, memory_budget_mb: float, device: str, hungarian: bool = True) -> dict:
    """``(role, a, b) -> PairPartners`` of every seed pair of each role; without ``hungarian``
    the best partners only (saesim.similarity.scan.max_abs_cosine: one bounded scan, no matching)."""
    from saesim.similarity.scan import max_abs_cosine

    def partners(a, b):
        if hungarian:
            return pair_partners(a, b, memory_budget_mb=memory_budget_mb, device=device)
        return max_abs_cosine(a, b, memory_budget_mb=memory_budget_mb, device=device)

    return {(role, a, b): partners(decs[a], decs[b]) for role, decs in decoders.items() for a, b in _pairs(sorted(decs))}


def _calibrate(partners: dict, null_quantile: float, threshold: float | None) -> tuple[float, str]:
    """(threshold, source): given, else the null pairs' ``null_quantile``, else :data:`FALLBACK_THRESHOLD`."""
    null_cos = [v for (role, _, _), p in partners.items() if role == "null" for v in (p.best_cos_a, p.best_cos_b)]
    if threshold is not None:
        return float(threshold), "given"
    if null_cos:
        return null_threshold(null_cos, null_quantile), f"null_q{null_quantile:g}"
    return FALLBACK_THRESHOLD, "fixed"


def _partner_columns(partners: dict, role: str, s, others: Sequence, hungarian: bool = True) -> dict[str, np.ndarray]:
    """Seed ``s``'s partners in each of ``others``: ``[n_latents, n_others]`` arrays (best
    partners and, with ``hungarian``, the one-to-one matching's)."""
    cols = {k: [] for k in ("best_partner", "best_cos", "hungarian_partner", "hungarian_cos")[: 4 if hungarian else 2]}
    for o in others:
        p = partners.get((role, s, o))
        if p is not None:  # s is A
            vals = (p.best_b_for_a, p.best_cos_a, *((p.hung_b_for_a, p.hung_cos_a) if hungarian else ()))
        else:
            p = partners[(role, o, s)]
            vals = (p.best_a_for_b, p.best_cos_b, *((p.hung_a_for_b, p.hung_cos_b) if hungarian else ()))
        for k, v in zip(cols, vals):
            cols[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in cols.items()}


def _pair_reappearance(p, t: float) -> float:
    return float(np.mean([(p.best_cos_a >= t).mean(), (p.best_cos_b >= t).mean()]))


def analyse_spaces(
    decoders: dict,
    stats: dict,
    moments,
    *,
    memory_budget_mb: float = 1024,
    null_quantile: float = NULL_QUANTILE,
    threshold: float | None = None,
    device: str = "cpu",
) -> tuple[dict, dict, dict, dict]:
    """Reappearance with partners found in each non-raw coordinate system of
    :func:`saesim.similarity.geometry.coordinate_maps` (the store's ``moments``: every decoder, the
    null's too, mapped with the same transform, as the decoder metrics are), the threshold
    calibrated on the null's pairs *in that space* like :func:`analyse_variant`'s.

    Returns ``(spaces, columns, sae_values, pair_values)``: ``{space: {threshold,
    threshold_source, dim}}``; per ``(role, seed)`` the artifact's columns ``best_partner_<sfx>``,
    ``best_cos_<sfx>``, ``reappear_t_<sfx>``, ``stable_<sfx>``; per ``(role, seed)`` and per
    ``(role, a, b)`` the values of the per-latent metrics registered with ``spaces=True``.
    """
    from saesim.registry.metrics import COORDINATE_SPACES
    from saesim.similarity.geometry import coordinate_maps

    spaces, columns, sae_values, pair_values = {}, {}, {}, {}
    for name, cmap in coordinate_maps(moments).items():
        sfx = COORDINATE_SPACES[name].suffix
        if not sfx:
            continue
        metrics = [m for m in per_latent_metrics() if m.space == name]
        mapped = {role: {s: cmap.map_rows(np.asarray(d, dtype=np.float32)) for s, d in decs.items()} for role, decs in decoders.items()}
        partners = _all_partners(mapped, memory_budget_mb, device, hungarian=False)
        t, source = _calibrate(partners, null_quantile, threshold)
        spaces[name] = {"threshold": t, "threshold_source": source, "dim": int(cmap.dim)}
        for role, decs in mapped.items():
            seeds = sorted(decs)
            for s in seeds:
                cols = _partner_columns(partners, role, s, [o for o in seeds if o != s], hungarian=False)
                reap = reappearance(cols["best_cos"], t)
                stable, half = stable_masks(reap)
                columns.setdefault((role, s), {}).update({
                    f"best_partner_{sfx}": cols["best_partner"], f"best_cos_{sfx}": cols["best_cos"],
                    f"reappear_t_{sfx}": reap, f"stable_{sfx}": stable,
                })
                s_all, s_half = set_summary(stable, stats[role][s]), set_summary(half, stats[role][s])
                values = {"frac_stable": s_all["frac"], "frac_stable_half": s_half["frac"],
                          "ev_share_stable": s_all["ev_share"], "firing_share_stable": s_all["firing_share"]}
                sae_values.setdefault((role, s), {}).update(
                    {m.name: values.get(m.base, float("nan")) for m in metrics if m.per == "sae"})
        for key, p in partners.items():
            values = {"reappear_mean": _pair_reappearance(p, t)}
            pair_values.setdefault(key, {}).update({m.name: values.get(m.base, float("nan")) for m in metrics if m.per == "pair"})
    return spaces, columns, sae_values, pair_values


def analyse_variant(
    decoders: dict,
    stats: dict,
    *,
    memory_budget_mb: float = 1024,
    null_quantile: float = NULL_QUANTILE,
    subspace_fraction: float = DEFAULT_SUBSPACE_FRACTION,
    threshold: float | None = None,
    device: str = "cpu",
    moments=None,
) -> VariantAnalysis:
    """Every SAE of one variant: ``decoders[role][seed]`` (``W_dec`` [n, d]) and ``stats[role][seed]``
    (:class:`LatentStats`), roles ``"real"`` (at least two seeds) and optionally ``"null"``.

    The threshold is the ``null_quantile`` of the null SAEs' best-match |cos| (both directions of
    every null pair) or, without at least two null SAEs, :data:`FALLBACK_THRESHOLD`. Each role's
    latents are judged against the other seeds of the same role. A given ``threshold`` replaces
    the calibrated one (source ``"given"``), in every coordinate space.

    With the store's ``moments`` (:class:`saesim.similarity.geometry.Moments`), the same is measured
    in the mean-removed and whitened coordinates too (:func:`analyse_spaces`): more columns in the
    tables and rows, ``spaces`` filled; without them those columns are absent (NaN in the summary).
    """
    if len(decoders.get("real", {})) < 2:
        raise SaesimError(f"per-latent stability needs at least two seeds; got {sorted(decoders.get('real', {}))}")
    # a null with a single seed has no partners to reappear in: left out (no threshold from it)
    decoders = {role: decs for role, decs in decoders.items() if len(decs) >= 2}
    partners = _all_partners(decoders, memory_budget_mb, device)
    t, source = _calibrate(partners, null_quantile, threshold)
    thresholds = {"t": t, **{f"{x:g}": x for x in FIXED_THRESHOLDS}}
    spaces, space_cols, space_sae, space_pair = {}, {}, {}, {}
    if moments is not None:
        spaces, space_cols, space_sae, space_pair = analyse_spaces(
            decoders, stats, moments, memory_budget_mb=memory_budget_mb, null_quantile=null_quantile,
            threshold=threshold, device=device,
        )

    tables, sae_rows, stable_of = {}, [], {}
    for role, decs in decoders.items():
        seeds = sorted(decs)
        for s in seeds:
            others = [o for o in seeds if o != s]
            cols = _partner_columns(partners, role, s, others)
            st = stats[role][s]
            dec = np.asarray(decs[s], dtype=np.float32)
            reap = {k: reappearance(cols["best_cos"], x) for k, x in thresholds.items()}
            stable, half = stable_masks(reap["t"])
            stable_of[(role, s)] = stable
            tables[(role, s)] = {
                "latent_id": np.arange(dec.shape[0], dtype=np.int64),
                "frequency": st.frequency.astype(np.float64),
                "mean_active": st.mean_active.astype(np.float64),
                "ev": st.ev.astype(np.float64),
                "ev_share": st.ev_share.astype(np.float64),
                "rms_activation": st.rms_contribution.astype(np.float64),
                "decoder_norm": np.linalg.norm(dec, axis=1).astype(np.float64),
                "other_seeds": np.asarray(others, dtype=np.int64),
                **cols,
                **{f"reappear_{k}": v for k, v in reap.items()},
                "stable": stable,
                "stable_half": half,
                **space_cols.get((role, s), {}),
            }
            s_all, s_half = set_summary(stable, st), set_summary(half, st)
            sae_rows.append({
                "role": role, "seed": s, "n_latents": dec.shape[0], "n_rows": st.n_rows,
                "explained_variance": st.explained_variance, "threshold": t,
                "reappear_mean": float(reap["t"].mean()),
                **{f"reappear_mean_{k}": float(reap[k].mean()) for k in thresholds if k != "t"},
                **{f"frac_stable_{k}": float(stable_masks(reap[k])[0].mean()) for k in thresholds if k != "t"},
                "frac_stable": s_all["frac"], "frac_stable_half": s_half["frac"],
                "ev_share_stable": s_all["ev_share"], "firing_share_stable": s_all["firing_share"],
                "ev_share_stable_half": s_half["ev_share"],
                "live_fraction": float((st.count > 0).mean()),
                **space_sae.get((role, s), {}),
            })

    pair_rows, spectra = [], {}
    for (role, a, b), p in partners.items():
        d = decoders[role][a].shape[1]
        ua, ub = ~stable_of[(role, a)], ~stable_of[(role, b)]
        r = subspace_rank(int(ua.sum()), int(ub.sum()), d, subspace_fraction)
        qs = []
        for s, u in ((a, ua), (b, ub)):
            dec = np.asarray(decoders[role][s], dtype=np.float64)
            w = stats[role][s].rms_contribution * np.linalg.norm(dec, axis=1)
            qs.append(weighted_subspace(dec[u], w[u], r))
        cosines = principal_cosines(*qs)
        spectra[(role, a, b)] = cosines
        r_eff = min(q.shape[1] for q in qs)
        pair_rows.append({
            "role": role, "seed_a": a, "seed_b": b, "threshold": t,
            "reappear_mean": _pair_reappearance(p, t),
            "hungarian_mean_cos": float(np.nanmean(np.r_[p.hung_cos_a])),
            "n_unstable_a": int(ua.sum()), "n_unstable_b": int(ub.sum()), "subspace_rank": r_eff, "d": d,
            "unstable_subspace": subspace_agreement(*qs),
            "unstable_subspace_chance": random_subspace_chance(qs[0].shape[1], qs[1].shape[1], d),
            **space_pair.get((role, a, b), {}),
        })
    return VariantAnalysis(t, source, tables, sae_rows, pair_rows, spectra, spaces)


def _mean(values) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def variant_summary(analysis: VariantAnalysis, n_latents: int, d: int) -> dict:
    """One variant's row of per_latent.csv: each quantity's mean over real SAEs (or pairs), its 95%
    t-interval where there are at least three seed pairs (saesim.registry.intervals), the same for the
    null SAEs, random decoders' value, and whether the excess over the null is distinguishable
    from zero (the real interval excludes the null's interval, or the null's mean without one)."""
    row = {"threshold": analysis.threshold, "threshold_source": analysis.threshold_source}
    n_real = sum(r["role"] == "real" for r in analysis.sae_rows)
    n_real_pairs = sum(r["role"] == "real" for r in analysis.pair_rows)
    row["n_seeds"], row["n_pairs"] = n_real, n_real_pairs
    row["n_null_seeds"] = sum(r["role"] == "null" for r in analysis.sae_rows)
    row["n_null_pairs"] = sum(r["role"] == "null" for r in analysis.pair_rows)
    for name, sp in analysis.spaces.items():
        row[COORDINATE_SPACES[name].column("threshold")] = sp["threshold"]
        row[COORDINATE_SPACES[name].column("threshold_source")] = sp["threshold_source"]
        row[COORDINATE_SPACES[name].column("dim")] = sp["dim"]
    for q in (*SAE_QUANTITIES, *PAIR_QUANTITIES):
        rows = analysis.sae_rows if q in SAE_QUANTITIES else analysis.pair_rows
        vals = {role: [r.get(q, np.nan) for r in rows if r["role"] == role] for role in ("real", "null")}
        # per-SAE numbers: one value per SAE, the interval still needs three seed pairs
        iv = interval_stats(vals["real"], vals["null"], n_pairs=n_real_pairs, n_null_pairs=row["n_null_pairs"])
        row.update({q: _mean(vals["real"]), f"{q}_lo": iv["lo"], f"{q}_hi": iv["hi"], f"{q}_null": _mean(vals["null"]),
                    f"{q}_null_lo": iv["null_lo"], f"{q}_null_hi": iv["null_hi"], f"{q}_excess_distinct": iv["excess_distinct"]})
    # random decoders' value: isotropic random decoders in the space the partners were found in,
    # at that space's threshold (NaN for a space not measured)
    rand = {"raw": random_reappearance(analysis.threshold, n_latents, d, max(n_real - 1, 1))}
    for name, sp in analysis.spaces.items():
        rand[name] = random_reappearance(sp["threshold"], n_latents, sp["dim"], max(n_real - 1, 1))
    for m in per_latent_metrics():
        if m.reference == "random":
            row[m.column("random")] = rand[m.space][m.base or m.name] if m.space in rand else float("nan")
    for x in FIXED_THRESHOLDS:  # the same at the fixed thresholds (means only)
        for q in (f"frac_stable_{x:g}", f"reappear_mean_{x:g}"):
            row[q] = _mean(r[q] for r in analysis.sae_rows if r["role"] == "real")
            row[f"{q}_null"] = _mean(r[q] for r in analysis.sae_rows if r["role"] == "null")
    row["unstable_subspace_chance"] = _mean(r["unstable_subspace_chance"] for r in analysis.pair_rows if r["role"] == "real")
    row["subspace_rank"] = _mean(r["subspace_rank"] for r in analysis.pair_rows if r["role"] == "real")
    return row


# --------------------------------------------------------------------------
# I/O edge: the per-SAE artifact
# --------------------------------------------------------------------------

ARTIFACT_FORMAT = "saesim-per-latent-1"


def arrays_hash(arrays: dict) -> str:
    """sha256 over each array's name, dtype, shape and bytes, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def write_per_latent_h5(path, arrays: dict, attrs: dict) -> None:
    """The per-SAE artifact: one dataset per column, attributes (JSON where not scalar), the
    content hash; written under a temporary name and renamed (complete or absent). No
    timestamps, so the same inputs give the same bytes."""
    import json
    import os
    from pathlib import Path

    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            for name in sorted(arrays):
                f.create_dataset(name, data=np.ascontiguousarray(arrays[name]), track_times=False)
            all_attrs = {"format": ARTIFACT_FORMAT, "content_hash": arrays_hash(arrays), **attrs}
            for key in sorted(all_attrs):
                v = all_attrs[key]
                f.attrs[key] = v if isinstance(v, (str, int, float, bool, np.number)) else json.dumps(v, sort_keys=True, default=str)
        os.replace(tmp, path)
    except OSError as e:
        raise SaesimError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def read_per_latent_h5(path) -> tuple[dict, dict]:
    """(arrays, attributes) of a per-SAE artifact; refuses a file of another format."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("format") != ARTIFACT_FORMAT:
                raise SaesimError(f"{path}: not a per-latent table (format {attrs.get('format')!r}, expected {ARTIFACT_FORMAT})")
            arrays = {k: f[k][()] for k in f.keys()}
    except OSError as e:
        raise SaesimError(f"{path}: cannot read per-latent table ({e})") from None
    return arrays, attrs


# --------------------------------------------------------------------------
# I/O edge: every SAE of an experiment (the workflow's rule per_latent_<exp>)
# --------------------------------------------------------------------------


def eval_blocks(store, eval_mask: np.ndarray, block_rows: int):
    """The store's evaluation rows (``eval_mask``) in blocks of at most ``block_rows``, reading
    only up to the last of them (store_rows.split_rows holds out the first eligible rows)."""
    idx = np.flatnonzero(eval_mask)
    if len(idx) == 0:
        raise SaesimError(f"{store.path}: no evaluation rows")
    stop = int(idx[-1]) + 1
    step = store.chunk_rows()
    for start in range(0, stop, step):
        block = store.read_rows(start, min(start + step, stop))
        block = block[eval_mask[start : start + len(block)]]
        for s in range(0, len(block), block_rows):
            yield block[s : s + block_rows]


def sae_pass(sae_path, store_path: str, spec: dict, memory_budget_mb: float) -> tuple[np.ndarray, LatentStats, dict]:
    """(W_dec, statistics over the SAE's held-out rows, provenance) of one trained SAE: encoded
    by :class:`saesim.saes.encoding.NumpySAE` (sae-lens's ``encode``, without importing it),
    rows chosen as store_rows.split_rows chose them."""
    import torch

    from saesim.saes.encoding import NumpySAE, load_encoder
    from saesim.stores.activation_store import open_store
    from saesim.saes.loading import load_sae_weights
    from saesim.stores.rows import split_rows
    from saesim.hashes import file_sha256
    from saesim.saes.training import SAESpec

    w = load_sae_weights(sae_path, with_encoder=False)
    sae = NumpySAE(load_encoder(sae_path), str(sae_path))

    def encode(x):
        return torch.from_numpy(sae.encode(x.numpy() if hasattr(x, "numpy") else x))

    with open_store(store_path) as store:
        if store.d != w.d_in:
            raise SaesimError(f"{sae_path}: d_in {w.d_in} does not match the store {store_path} (d {store.d})")
        _, eval_mask = split_rows(store, SAESpec(**spec))
        block = chunk_rows_for(w.d_sae, memory_budget_mb)
        st = latent_stats(encode, w.W_dec, w.b_dec, eval_blocks(store, eval_mask, block), memory_budget_mb=memory_budget_mb)
        store_hash = store.content_hash
    weights = Path(sae_path) / "sae_weights.safetensors"
    prov = {
        "sae": str(sae_path),
        "sae_weights_sha256": file_sha256(weights) if weights.exists() else "",
        "store": str(store_path),
        "store_content_hash": store_hash,
        "eval_rows": int(eval_mask.sum()),
    }
    return np.asarray(w.W_dec, dtype=np.float32), st, prov


def variant_moments(members: Sequence[dict], cache: dict | None = None):
    """The store's moments for the coordinate spaces (saesim.similarity.geometry.load_moments) from
    the first of ``members`` with a ``moments`` path (the null store, which keeps them: no pass over
    the rows; else the store, streamed once over the rows training may use, ``row_exclusions``); None
    without one. ``cache`` (path -> moments) keeps a store's moments for its other variants."""
    from saesim.similarity.geometry import load_moments

    src = next((s for s in members if s.get("moments")), None)
    if src is None:
        return None
    cache = {} if cache is None else cache
    if src["moments"] not in cache:
        cache[src["moments"]] = load_moments(src["moments"], **(src.get("row_exclusions") or {}))
    return cache[src["moments"]]


def run_experiment(saes: Sequence[dict], options: dict, memory_budget_mb: float) -> tuple[list, list, list, dict, dict]:
    """Every variant of an experiment: ``saes`` are dicts with ``hook, variant, seed, role, path,
    store, spec, identity, out`` (``out``: the per-SAE artifact to write) and optionally ``moments``
    and ``row_exclusions`` (:func:`variant_moments`: the per-latent view in the mean-removed and
    whitened coordinates too). Writes the artifacts;
    returns (variant rows, SAE rows, pair rows, principal cosines keyed ``(hook, variant, role, a, b)``,
    ``[n, 2]`` (frequency, reappearance) of each role's first seed keyed ``(hook, variant, role)``)."""
    from saesim.stores.activation_store import producer_versions

    groups: dict = {}
    for s in saes:
        groups.setdefault((s["hook"], s["variant"]), []).append(s)
    variant_rows, sae_rows, pair_rows, spectra, scatter = [], [], [], {}, {}
    moments_cache: dict = {}
    for (hook, variant), members in groups.items():
        decoders: dict = {}
        stats: dict = {}
        prov: dict = {}
        for s in members:
            dec, st, pv = sae_pass(s["path"], s["store"], s["spec"], memory_budget_mb)
            decoders.setdefault(s["role"], {})[s["seed"]] = dec
            stats.setdefault(s["role"], {})[s["seed"]] = st
            prov[(s["role"], s["seed"])] = pv
        va = analyse_variant(
            decoders, stats, memory_budget_mb=memory_budget_mb, null_quantile=options["null_quantile"],
            subspace_fraction=options["subspace_fraction"], threshold=options.get("threshold"),
            moments=variant_moments(members, moments_cache),
        )
        for s in members:
            key = (s["role"], s["seed"])
            if key not in va.tables:  # the only SAE of its role (e.g. one null seed): nothing to compare
                raise SaesimError(f"{s['path']}: per-latent tables need at least two seeds of its role ({s['role']})")
            st = stats[s["role"]][s["seed"]]
            write_per_latent_h5(s["out"], va.tables[key], {
                "identity": s["identity"],
                "threshold": va.threshold,
                "threshold_source": va.threshold_source,
                "null_quantile": options["null_quantile"],
                "fixed_thresholds": list(FIXED_THRESHOLDS),
                "n_rows": st.n_rows,
                "explained_variance": st.explained_variance,
                "sst": st.sst,
                "ess_bias": st.ess_bias,
                "subspace_fraction": options["subspace_fraction"],
                "spaces": va.spaces,
                "provenance": prov[key],
                "producer": producer_versions(),
                "definitions": "docs/per-latent.md",
            })
        any_dec = next(iter(decoders["real"].values()))
        row = variant_summary(va, any_dec.shape[0], any_dec.shape[1])
        variant_rows.append({"hook": hook, "variant": variant, "width": any_dec.shape[0], "d": any_dec.shape[1], **row})
        sae_rows += [{"hook": hook, "variant": variant, **r} for r in va.sae_rows]
        pair_rows += [{"hook": hook, "variant": variant, **r} for r in va.pair_rows]
        spectra.update({(hook, variant, *k): v for k, v in va.spectra.items()})
        # per-latent scatter data for the figure: (frequency, reappearance) of the first seed of each role
        for role in decoders:
            s0 = min(decoders[role])
            t = va.tables[(role, s0)]
            scatter[(hook, variant, role)] = np.stack([t["frequency"], t["reappear_t"]], 1)
    return variant_rows, sae_rows, pair_rows, spectra, scatter
