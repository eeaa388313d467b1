"""Transfer across models and layers: does SAE A work on model B's activations, raw or through a map?

McCann 2026 ("Polymorphism Is Rotation", arXiv 2605.24577) reports one seed's SAE giving negative
explained variance on another seed's activations and near its own value after one orthogonal
Procrustes fit. For two stores with aligned rows (the same tokens; see
:mod:`saesim.similarity.universality.alignment`), this module measures, on held-out rows:

* ``ceiling``: SAE A on A's own activations (the within-model value);
* ``raw``: SAE A on B's activations as they are (only when both have the same ``d``);
* ``procrustes``: on ``M(x_B) = (x_B - mu_B) R + mu_A`` with ``R`` the orthogonal Procrustes
  solution (:func:`scipy.linalg.orthogonal_procrustes`, centred rows; needs equal ``d``);
* ``affine``: on ``M(x_B) = [x_B, 1] W``, ``W`` by least squares (any ``d_B``).

Maps are fitted on one half of the rows (``fit``) and everything is evaluated on the other
(``eval``), split by a seeded permutation. For each map: the explained variance of SAE A on
its input ``M(x_B)`` (1 - squared error / total variance, as :func:`saesim.saes.evaluation.evaluate_sae`),
its L0, the map's own fit ``map_r2`` (explained variance of ``x_A`` by ``M(x_B)``), and the
activation correlation of A's latents (on ``M(x_B)``) with B's paired latents (on ``x_B``),
median over the given latent pairs; the ``ceiling`` row's correlation is the pairing's own
(A on ``x_A`` vs B on ``x_B``). With decoders, ``decoder_mmcs`` is the mean max |cos| of A's
decoder rows with B's mapped into A's space by the linear part of the map (raw: unmapped).

Memory: ``2 n d`` float64 rows per side (``n`` = ``max_rows`` fit + eval rows at most) and
the dense codes of one chunk; SAE codes are never kept beyond the paired latents' columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saesim.errors import SaesimError

#: rows per half (fit, eval) by default
DEFAULT_TRANSFER_ROWS = 4096
#: the maps measured, in table order
MAPS = ("ceiling", "raw", "procrustes", "affine")


def fit_procrustes(x_from: np.ndarray, x_to: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R, mu_from, mu_to)``: the orthogonal ``R`` minimising ``|(x_from - mu_from) R - (x_to - mu_to)|``."""
    from scipy.linalg import orthogonal_procrustes

    x_from, x_to = np.asarray(x_from, np.float64), np.asarray(x_to, np.float64)
    if x_from.shape != x_to.shape:
        raise SaesimError(f"Procrustes needs rows of equal shape, got {x_from.shape} and {x_to.shape}")
    mu_f, mu_t = x_from.mean(0), x_to.mean(0)
    R, _ = orthogonal_procrustes(x_from - mu_f, x_to - mu_t)
    return R, mu_f, mu_t


def fit_affine(x_from: np.ndarray, x_to: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of the least-squares map ``x_to ~ x_from W + b``."""
    x_from, x_to = np.asarray(x_from, np.float64), np.asarray(x_to, np.float64)
    design = np.hstack([x_from, np.ones((len(x_from), 1))])
    coef, *_ = np.linalg.lstsq(design, x_to, rcond=None)
    return coef[:-1], coef[-1]


def explained_variance(x: np.ndarray, x_hat: np.ndarray) -> float:
    """1 - sum |x - x_hat|^2 / sum |x - mean(x)|^2 (NaN when x has no variance)."""
    x = np.asarray(x, np.float64)
    total = float(((x - x.mean(0)) ** 2).sum())
    if not total > 0:
        return float("nan")
    return 1.0 - float(((x - np.asarray(x_hat, np.float64)) ** 2).sum()) / total


def _encode_decode(sae: Any, x: np.ndarray, chunk_rows: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes ``[n, n_latents]`` (float32) and reconstructions ``[n, d]`` of an SAE.

    ``sae``: an sae-lens SAE (torch: ``encode``/``decode``) or an object with numpy
    ``encode`` and ``W_dec`` (and optional ``b_dec``), e.g. :class:`~saesim.similarity.universality.ArraySAE`.
    """
    codes, recon = [], []
    for i0 in range(0, len(x), chunk_rows):
        block = np.ascontiguousarray(x[i0 : i0 + chunk_rows], dtype=np.float32)
        if hasattr(sae, "parameters"):
            import torch

            dtype = next(sae.parameters()).dtype
            with torch.no_grad():
                z = sae.encode(torch.from_numpy(block).to(dtype=dtype, device=next(sae.parameters()).device))
                xh = sae.decode(z)
            codes.append(z.float().cpu().numpy())
            recon.append(xh.float().cpu().numpy())
        else:
            z = sae.encode(block)
            z = z.toarray() if hasattr(z, "toarray") else np.asarray(z)
            xh = z @ np.asarray(sae.W_dec, np.float32)
            if getattr(sae, "b_dec", None) is not None:
                xh = xh + np.asarray(sae.b_dec, np.float32)
            codes.append(z.astype(np.float32))
            recon.append(xh)
    return np.concatenate(codes), np.concatenate(recon)


def paired_correlations(codes_a: np.ndarray, codes_b: np.ndarray, pairs_a, pairs_b) -> np.ndarray:
    """Pearson correlation over tokens of ``codes_a[:, i]`` with ``codes_b[:, j]`` per pair (NaN: constant)."""
    a = np.asarray(codes_a, np.float64)[:, np.asarray(pairs_a, np.int64)]
    b = np.asarray(codes_b, np.float64)[:, np.asarray(pairs_b, np.int64)]
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (a * b).sum(0) / den, np.nan)


def split_halves(n_rows: int, max_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted row sets (fit, eval) of at most ``max_rows`` each, seeded."""
    if n_rows < 4:
        raise SaesimError(f"transfer needs at least 4 aligned rows, got {n_rows}")
    perm = np.random.default_rng(seed).permutation(n_rows)
    half = min(n_rows // 2, int(max_rows))
    return np.sort(perm[:half]), np.sort(perm[half : 2 * half])


def transfer(
    sae_a: Any,
    sae_b: Any,
    x_a: np.ndarray,
    x_b: np.ndarray,
    *,
    pairs: tuple[Any, Any] | None = None,
    dec_a: np.ndarray | None = None,
    dec_b: np.ndarray | None = None,
    max_rows: int = DEFAULT_TRANSFER_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """SAE A on B's held-out activations raw and through fitted maps (see the module docstring).

    ``x_a``, ``x_b``: aligned rows ``[n, d_a]``, ``[n, d_b]`` (row i is the same token). ``pairs``:
    (latents of A, latents of B) paired e.g. by activation correlation. Returns
    ``{"maps": {name: {...}}, "n_fit", "n_eval", ...}``; a map that does not apply (raw or
    Procrustes across dimensions) is absent.
    """
    from saesim.similarity import mean_max_cosine

    x_a, x_b = np.asarray(x_a, np.float64), np.asarray(x_b, np.float64)
    if len(x_a) != len(x_b):
        raise SaesimError(f"transfer needs aligned rows: A has {len(x_a)}, B has {len(x_b)}")
    fit, ev = split_halves(len(x_a), max_rows, seed)
    same_d = x_a.shape[1] == x_b.shape[1]
    maps: dict[str, tuple[np.ndarray, np.ndarray | None]] = {"ceiling": (x_a[ev], None)}
    if same_d:
        maps["raw"] = (x_b[ev], np.eye(x_a.shape[1]))
        R, mu_f, mu_t = fit_procrustes(x_b[fit], x_a[fit])
        maps["procrustes"] = ((x_b[ev] - mu_f) @ R + mu_t, R)
    W, b = fit_affine(x_b[fit], x_a[fit])
    maps["affine"] = (x_b[ev] @ W + b, W)

    codes_b = None
    if pairs is not None:
        codes_b, _ = _encode_decode(sae_b, x_b[ev])
    out_maps = {}
    for name, (inp, linear) in maps.items():
        codes, recon = _encode_decode(sae_a, inp)
        row = {
            "explained_variance": explained_variance(inp, recon),
            "l0": float((codes != 0).sum(1).mean()),
            "map_r2": explained_variance(x_a[ev], inp),
        }
        if pairs is not None and len(pairs[0]):
            corr = paired_correlations(codes, codes_b, *pairs)
            row["paired_corr_median"] = float(np.nanmedian(corr)) if np.isfinite(corr).any() else float("nan")
            row["paired_corr_mean"] = float(np.nanmean(corr)) if np.isfinite(corr).any() else float("nan")
        if dec_a is not None and dec_b is not None and name != "ceiling":
            mapped = np.asarray(dec_b, np.float64) @ linear  # directions: the linear part only
            row["decoder_mmcs"] = mean_max_cosine(np.asarray(dec_a, np.float32), mapped.astype(np.float32))
        out_maps[name] = row
    res: dict[str, Any] = {"maps": out_maps, "n_fit": int(len(fit)), "n_eval": int(len(ev)), "d_a": int(x_a.shape[1]),
                           "d_b": int(x_b.shape[1]), "seed": int(seed), "n_pairs": 0 if pairs is None else int(len(pairs[0]))}
    if dec_a is not None and dec_b is not None:
        from saesim.similarity import expected_max_abs_cosine

        d = x_a.shape[1]  # symmetric mean max |cos| of random decoders of these shapes (closed form)
        res["decoder_mmcs_baseline"] = 0.5 * (expected_max_abs_cosine(len(dec_b), d) + expected_max_abs_cosine(len(dec_a), d))
    return res


def transfer_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per map of a :func:`transfer` result (ceiling first)."""
    rows = []
    for name in MAPS:
        m = summary["maps"].get(name)
        if m is None:
            continue
        rows.append({"map": name, **m, "n_fit": summary["n_fit"], "n_eval": summary["n_eval"],
                     "decoder_mmcs_baseline": summary.get("decoder_mmcs_baseline")})
    return rows


def transfer_between_stores(
    store_a: Any,
    sae_a: Any,
    store_b: Any,
    sae_b: Any,
    *,
    rows_a: np.ndarray | None = None,
    rows_b: np.ndarray | None = None,
    exclusions_a: dict | None = None,
    exclusions_b: dict | None = None,
    pairs: tuple[Any, Any] | None = None,
    max_rows: int = DEFAULT_TRANSFER_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`transfer` on two stores with aligned rows (row ``rows_a[i]`` of A is row ``rows_b[i]``
    of B; default: the same row numbers, which :func:`check_aligned_tokens` checks).

    Only rows SAE training may use on both sides (``exclusions_*``: ``exclude_positions`` and
    ``exclude_norm_above`` of :func:`saesim.stores.rows.eligible_rows`) are candidates; at most
    ``2 max_rows`` of them are drawn (seeded) and read, then split into fit and eval halves.
    """
    from saesim.stores.activation_store import open_store
    from saesim.stores.rows import eligible_rows
    from saesim.similarity.universality.alignment import check_aligned_tokens
    from saesim.similarity.universality.codes import decoder_of, iter_selected_rows, resolve_sae

    with open_store(store_a) as sa, open_store(store_b) as sb:
        if rows_a is None:
            n = check_aligned_tokens(sa, sb)
            rows_a = rows_b = np.arange(n)
        rows_a, rows_b = np.asarray(rows_a, np.int64), np.asarray(rows_b, np.int64)
        ok = eligible_rows(sa, **(exclusions_a or {}))[rows_a] & eligible_rows(sb, **(exclusions_b or {}))[rows_b]
        cand = np.flatnonzero(ok)
        take = np.sort(np.random.default_rng(seed).permutation(cand.size)[: 2 * int(max_rows)])
        pick = cand[take]
        order_a = np.argsort(rows_a[pick], kind="stable")  # read in increasing row order
        x_a = np.concatenate(list(iter_selected_rows(sa, rows_a[pick][order_a], 4096)))
        x_b = np.concatenate(list(iter_selected_rows(sb, rows_b[pick][order_a], 4096))) if np.all(np.diff(rows_b[pick][order_a]) > 0) else None
        if x_b is None:  # B's rows are not increasing in A's order: read them sorted, then reorder
            ob = np.argsort(rows_b[pick][order_a], kind="stable")
            xb_sorted = np.concatenate(list(iter_selected_rows(sb, rows_b[pick][order_a][ob], 4096)))
            x_b = np.empty_like(xb_sorted)
            x_b[ob] = xb_sorted
    model_a, model_b = resolve_sae(sae_a), resolve_sae(sae_b)
    res = transfer(model_a, model_b, x_a, x_b, pairs=pairs, dec_a=decoder_of(model_a), dec_b=decoder_of(model_b),
                   max_rows=max_rows, seed=seed)
    res["n_candidate_rows"] = int(cand.size)
    return res


#: columns of comparisons/<cmp>/transfer.csv, in order
TRANSFER_COLUMNS = [
    "hook_a", "hook_b", "map", "explained_variance", "l0", "map_r2", "paired_corr_median", "paired_corr_mean",
    "decoder_mmcs", "decoder_mmcs_baseline", "n_fit", "n_eval", "n_pairs",
]


def transfer_table(summary_files) -> "Any":
    """One row per (hook_a, hook_b, map) of a comparison's summaries that hold ``transfer``."""
    import json
    from pathlib import Path

    import pandas as pd

    rows = []
    for path in summary_files:
        s = json.loads(Path(path).read_text())
        t = s.get("transfer")
        if not t:
            continue
        for r in transfer_rows(t):
            rows.append({"hook_a": s["hook_a"], "hook_b": s["hook_b"], "n_pairs": t.get("n_pairs"), **r})
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def transfer_line(table, hook_a: str, hook_b: str) -> str | None:
    """``SAE A on B, explained variance: ceiling .. | raw .. | Procrustes .. | affine ..`` for one hook pair."""
    t = table[(table["hook_a"] == hook_a) & (table["hook_b"] == hook_b)]
    if t.empty:
        return None
    names = {"ceiling": "own", "raw": "raw", "procrustes": "Procrustes", "affine": "affine"}
    parts = [f"{names[r['map']]} {r['explained_variance']:.2f}" for _, r in t.iterrows()]
    return "A's SAE on B, expl. var.:\n" + " | ".join(parts)
