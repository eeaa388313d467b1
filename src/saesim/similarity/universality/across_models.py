"""One call per comparison: pair the latents of two SAEs by activation correlation,
filter, and measure the relational similarity of the paired decoders.

:func:`compare_by_activations` takes two activation stores and two SAEs (a rule
script's entry point); :func:`compare_codes` takes precomputed sparse codes and
decoders (tests, benchmarks, synthetic data).  Both return a
:class:`UniversalityResult`: a JSON-able ``summary`` and per-latent ``arrays``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from saesim.stores.activation_store import ActivationStore, open_store
from saesim.errors import SaesimError
from saesim.similarity.universality.alignment import check_aligned_tokens
from saesim.similarity.universality.codes import SparseCodes, collect_codes, decoder_of, encode_sparse, iter_selected_rows, resolve_sae
from saesim.similarity.universality.correlation import cross_correlation, one_to_one_pairs
from saesim.similarity.universality.filters import junk_dominated_latents, rare_latents
from saesim.similarity.universality.relational import METRICS, relational_similarity


@dataclass
class UniversalityResult:
    """``summary``: JSON-able numbers; ``arrays``: per-latent arrays to save (npz)."""

    summary: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def save_arrays(self, path: str | os.PathLike) -> None:
        np.savez_compressed(path, **self.arrays)


def _corr_summary(corr: np.ndarray) -> dict:
    if corr.size == 0:
        return {"n_paired": 0, "mean_corr": float("nan"), "median_corr": float("nan")}
    return {"n_paired": int(corr.size), "mean_corr": float(np.mean(corr)), "median_corr": float(np.median(corr))}


def _as_codes(codes: SparseCodes | Iterable[Any], latent_major: bool, name: str) -> SparseCodes:
    if isinstance(codes, SparseCodes):
        return codes
    return collect_codes(codes, latent_major=latent_major, name=name)


@dataclass(frozen=True)
class CodeComparisonOptions:
    """Every setting of :func:`compare_codes` beyond its inputs, by step.

    Defaults agree with the schema's ``$defs.comparison`` where it has the key
    (``tests/test_defaults.py``).
    """

    # filters: dead or rare latents, junk-dominated latents (with junk rows), weak pairs
    min_freq: float = 1e-4
    corr_threshold: float = 0.1
    n_top_tokens: int = 5
    # pairing by activation correlation (see cross_correlation, one_to_one_pairs)
    one_to_one: str = "assignment"
    max_edges_per_latent: int = 16
    max_pairs_per_tile: int = 8_000_000
    # relational measures of the paired decoders (see relational_similarity)
    relational_on: tuple[str, ...] = ("one_to_one", "many_to_one")
    metrics: tuple[str, ...] = METRICS
    n_null: int = 100
    seed: int = 0
    max_rows: int = 4096
    rsa_max_rows: int = 2000
    knn_k: int = 10
    variance_kept: float = 0.99
    n_components: int | None = None

    @classmethod
    def with_overrides(
        cls, options: CodeComparisonOptions | None, overrides: dict[str, Any], caller: str
    ) -> CodeComparisonOptions:
        """``options`` (the defaults when None) with the fields named in ``overrides`` replaced
        (:func:`saesim.similarity.options.with_overrides`)."""
        from saesim.similarity.options import with_overrides

        return with_overrides(cls, options, overrides, caller)


def compare_codes(
    codes_a: SparseCodes | Iterable[Any],
    codes_b: SparseCodes | Iterable[Any],
    decoder_a: np.ndarray | None = None,
    decoder_b: np.ndarray | None = None,
    *,
    junk_rows_a: np.ndarray | None = None,
    junk_rows_b: np.ndarray | None = None,
    options: CodeComparisonOptions | None = None,
    **overrides: Any,
) -> UniversalityResult:
    """Pair latents of A and B by exact activation correlation; filter; compare decoders.

    ``codes_a``/``codes_b``: :class:`SparseCodes` or iterables of token-major
    chunks (CSR or dense ``[rows, n_latents]``) over the same aligned tokens.
    ``decoder_a``/``decoder_b``: ``[n_latents, d]`` decoder rows; without them
    the relational measures are skipped.  ``options`` (a
    :class:`CodeComparisonOptions`, its defaults when None) holds every other
    setting; keyword ``overrides`` replace single fields of it (e.g.
    ``n_null=10``), so ``compare_codes(a, b, da, db, min_freq=1e-3)`` works as before.

    Filters, in order: latents dead or firing on fewer than ``min_freq`` of the
    tokens; latents whose top-``n_top_tokens`` activating tokens are mostly junk
    (only when ``junk_rows_*`` masks over token rows are given); then pairs
    with correlation under ``corr_threshold``.  Removed latents take no part in
    pairing.  Many-to-one: each remaining A latent with its best B latent (and
    the reverse direction); one-to-one: maximum total correlation over edges
    at or above the threshold (see :func:`one_to_one_pairs`).
    """
    o = CodeComparisonOptions.with_overrides(options, overrides, "compare_codes")
    t0 = time.perf_counter()
    codes_a = _as_codes(codes_a, True, "codes A")
    codes_b = _as_codes(codes_b, False, "codes B")
    t_collect = time.perf_counter() - t0
    n_a, n_b = codes_a.n_latents, codes_b.n_latents
    for side, dec, n in (("A", decoder_a, n_a), ("B", decoder_b, n_b)):
        if dec is not None and np.shape(dec)[0] != n:
            raise SaesimError(f"decoder {side} has {np.shape(dec)[0]} rows but SAE {side} has {n} latents")

    rare_a = rare_latents(codes_a.stats, o.min_freq)
    rare_b = rare_latents(codes_b.stats, o.min_freq)
    junk_a = np.zeros(n_a, dtype=bool)
    junk_b = np.zeros(n_b, dtype=bool)
    for side, rows, codes, junk, rare in (
        ("A", junk_rows_a, codes_a, junk_a, rare_a),
        ("B", junk_rows_b, codes_b, junk_b, rare_b),
    ):
        if rows is None:
            continue
        rows = np.asarray(rows, dtype=bool)
        if rows.shape != (codes.n_tokens,):
            raise SaesimError(f"junk_rows_{side.lower()} has shape {rows.shape}, expected ({codes.n_tokens},)")
        junk[:] = junk_dominated_latents(codes, rows, o.n_top_tokens) & ~rare
    eligible_a = ~rare_a & ~junk_a
    eligible_b = ~rare_b & ~junk_b

    t0 = time.perf_counter()
    cc = cross_correlation(
        codes_a,
        codes_b,
        eligible_a=eligible_a,
        eligible_b=eligible_b,
        edge_threshold=o.corr_threshold,
        max_edges_per_latent=o.max_edges_per_latent,
        max_pairs_per_tile=o.max_pairs_per_tile,
    )
    t_corr = time.perf_counter() - t0

    has_a = cc.a_to_b.partner >= 0
    keep_a = has_a & (cc.a_to_b.corr >= o.corr_threshold)
    has_b = cc.b_to_a.partner >= 0
    keep_b = has_b & (cc.b_to_a.corr >= o.corr_threshold)

    t0 = time.perf_counter()
    pair_a, pair_b, pair_corr = one_to_one_pairs(cc.edge_a, cc.edge_b, cc.edge_corr, method=o.one_to_one)
    t_match = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "n_tokens": int(cc.n_tokens),
        "n_latents_a": int(n_a),
        "n_latents_b": int(n_b),
        "filters": {
            "dead_or_rare": {
                "min_freq": float(o.min_freq),
                "removed_a": int(rare_a.sum()),
                "removed_b": int(rare_b.sum()),
                "dead_a": int((codes_a.stats.fire_counts == 0).sum()),
                "dead_b": int((codes_b.stats.fire_counts == 0).sum()),
            },
            "junk_top_tokens": {
                "n_top": int(o.n_top_tokens),
                "applied_a": junk_rows_a is not None,
                "applied_b": junk_rows_b is not None,
                "removed_a": int(junk_a.sum()),
                "removed_b": int(junk_b.sum()),
            },
            "below_threshold": {
                "threshold": float(o.corr_threshold),
                "removed_many_to_one_a_to_b": int((has_a & ~keep_a).sum()),
                "removed_many_to_one_b_to_a": int((has_b & ~keep_b).sum()),
                "eligible_a_without_one_to_one_partner": int(eligible_a.sum() - pair_a.size),
            },
        },
        "many_to_one": _corr_summary(cc.a_to_b.corr[keep_a]),
        "many_to_one_b_to_a": _corr_summary(cc.b_to_a.corr[keep_b]),
        "one_to_one": {**_corr_summary(pair_corr), "method": o.one_to_one},
        "n_distinct_b_in_many_to_one": int(np.unique(cc.a_to_b.partner[keep_a]).size),
        "correlation_cost": {
            "n_cofiring_pairs": int(cc.n_cofiring_pairs),
            "n_tiles": int(cc.n_tiles),
            "max_tile_pairs": int(cc.max_tile_pairs),
            "max_pairs_per_tile": int(o.max_pairs_per_tile),
            "n_candidate_edges": int(cc.edge_a.size),
        },
    }

    relational: dict[str, Any] = {}
    t0 = time.perf_counter()
    if decoder_a is not None and decoder_b is not None:
        pairings = {
            "one_to_one": (pair_a, pair_b),
            "many_to_one": (np.flatnonzero(keep_a), cc.a_to_b.partner[keep_a]),
        }
        dec_a = np.asarray(decoder_a, dtype=np.float64)
        dec_b = np.asarray(decoder_b, dtype=np.float64)
        for name in o.relational_on:
            if name not in pairings:
                raise SaesimError(f"relational_on: unknown pairing {name!r}; known: {sorted(pairings)}")
            ia, ib = pairings[name]
            if ia.size < max(3, o.knn_k + 1):
                relational[name] = {"skipped": f"only {ia.size} pairs"}
                continue
            res = relational_similarity(
                dec_a[ia],
                dec_b[ib],
                metrics=o.metrics,
                n_null=o.n_null,
                seed=o.seed,
                max_rows=o.max_rows,
                rsa_max_rows=o.rsa_max_rows,
                knn_k=o.knn_k,
                variance_kept=o.variance_kept,
                n_components=o.n_components,
            )
            relational[name] = {m: r.as_dict() for m, r in res.items()}
    summary["relational"] = relational
    summary["seconds"] = {
        "collect_codes": round(t_collect, 3),
        "correlation": round(t_corr, 3),
        "one_to_one": round(t_match, 3),
        "relational": round(time.perf_counter() - t0, 3),
    }

    arrays = {
        "best_b_for_a": cc.a_to_b.partner,
        "best_corr_a": cc.a_to_b.corr,
        "best_a_for_b": cc.b_to_a.partner,
        "best_corr_b": cc.b_to_a.corr,
        "firing_frequency_a": codes_a.stats.firing_frequency,
        "firing_frequency_b": codes_b.stats.firing_frequency,
        "rare_a": rare_a,
        "rare_b": rare_b,
        "junk_a": junk_a,
        "junk_b": junk_b,
        "one_to_one_a": pair_a,
        "one_to_one_b": pair_b,
        "one_to_one_corr": pair_corr,
    }
    return UniversalityResult(summary, arrays)


def _as_store(store: ActivationStore | str | os.PathLike) -> ActivationStore:
    return store if isinstance(store, ActivationStore) else open_store(store)


def _junk_rows(
    store: ActivationStore, rows: np.ndarray | None, junk_ids: np.ndarray | None, position0_is_junk: bool
) -> np.ndarray | None:
    if junk_ids is None and not position0_is_junk:
        return None
    if not store.has_tokens:
        raise SaesimError(f"{store.path}: junk-token filter needs token_ids, but the store has none")
    sel = slice(None) if rows is None else rows
    mask = np.zeros(store.n_rows if rows is None else len(rows), dtype=bool)
    if junk_ids is not None:
        mask |= np.isin(store.row_array("token_ids")[sel], np.asarray(junk_ids))
    if position0_is_junk:
        mask |= store.row_array("positions")[sel] == 0
    return mask


def compare_by_activations(
    store_a: ActivationStore | str | os.PathLike,
    sae_a: Any,
    store_b: ActivationStore | str | os.PathLike,
    sae_b: Any,
    *,
    chunk_rows: int = 1024,
    rows_a: np.ndarray | None = None,
    rows_b: np.ndarray | None = None,
    junk_token_ids_a: np.ndarray | None = None,
    junk_token_ids_b: np.ndarray | None = None,
    position0_is_junk: bool = False,
    device: str = "cpu",
    **options: Any,
) -> UniversalityResult:
    """Compare SAE A on store A with SAE B on store B (one rule's job).

    ``sae_a``/``sae_b``: sae-lens SAE folders, loaded SAEs, or objects with
    ``encode`` and ``W_dec`` (e.g. :class:`~saesim.similarity.universality.codes.ArraySAE`).
    Alignment: without ``rows_a``/``rows_b`` the stores must hold the same
    tokens row for row (checked on ``token_ids``); with them (e.g. from
    :func:`~saesim.similarity.universality.alignment.align_by_char_offsets`), row
    ``rows_a[i]`` of A is compared with row ``rows_b[i]`` of B.
    ``junk_token_ids_*`` (and ``position0_is_junk`` for BOS rows) enable the
    top-token filter.  Other keywords go to :func:`compare_codes`: ``options=`` (a
    :class:`CodeComparisonOptions`) and single fields of it.
    Memory: the codes (12 bytes per nonzero per SAE) plus one dense encoder
    chunk (``chunk_rows x n_latents`` float32) plus the correlation tiles.
    """
    sa, sb = _as_store(store_a), _as_store(store_b)
    if (rows_a is None) != (rows_b is None):
        raise SaesimError("give both rows_a and rows_b (from a token alignment) or neither")
    if rows_a is None:
        n_rows = check_aligned_tokens(sa, sb)
        alignment = {"mode": "same_tokens", "n_rows": int(n_rows)}
    else:
        rows_a = np.asarray(rows_a, dtype=np.int64)
        rows_b = np.asarray(rows_b, dtype=np.int64)
        if rows_a.shape != rows_b.shape or rows_a.ndim != 1:
            raise SaesimError(f"rows_a and rows_b must be 1-D of equal length, got {rows_a.shape} and {rows_b.shape}")
        alignment = {
            "mode": "row_pairs",
            "n_rows": int(rows_a.size),
            "fraction_kept_a": rows_a.size / sa.n_rows,
            "fraction_kept_b": rows_b.size / sb.n_rows,
        }
    model_a, model_b = resolve_sae(sae_a, device), resolve_sae(sae_b, device)
    if junk_token_ids_b is None and rows_a is None:  # same tokenizer: one junk set serves both
        junk_token_ids_b = junk_token_ids_a
    codes_a = collect_codes(encode_sparse(model_a, sa, chunk_rows, rows_a, device), latent_major=True, name=str(sa.path))
    codes_b = collect_codes(encode_sparse(model_b, sb, chunk_rows, rows_b, device), name=str(sb.path))
    result = compare_codes(
        codes_a,
        codes_b,
        decoder_of(model_a),
        decoder_of(model_b),
        junk_rows_a=_junk_rows(sa, rows_a, junk_token_ids_a, position0_is_junk),
        junk_rows_b=_junk_rows(sb, rows_b, junk_token_ids_b, position0_is_junk),
        **options,
    )
    result.summary["alignment"] = alignment
    result.summary["inputs"] = {
        "store_a": str(sa.path),
        "store_b": str(sb.path),
        "store_a_hash": sa.content_hash,
        "store_b_hash": sb.content_hash,
        "sae_a": str(sae_a) if isinstance(sae_a, (str, os.PathLike)) else type(sae_a).__name__,
        "sae_b": str(sae_b) if isinstance(sae_b, (str, os.PathLike)) else type(sae_b).__name__,
    }
    return result


def compare_neuron_activations(
    store_a: ActivationStore | str | os.PathLike,
    store_b: ActivationStore | str | os.PathLike,
    *,
    rows_a: np.ndarray | None = None,
    rows_b: np.ndarray | None = None,
    max_rows: int = 4096,
    seed: int = 0,
    n_null: int = 100,
    **options: Any,
) -> dict:
    """The relational measures on raw model activations (neuron space; rows are tokens).

    A seeded sample of ``max_rows`` aligned tokens is read from both stores;
    row i of A's activations is paired with row i of B's.  ``options`` go to
    :func:`~saesim.similarity.universality.relational.relational_similarity`.

    When both sides read the same rows of the same activations (two SAEs on
    one hook), every measure is 1 by construction: the result says so
    (``same_activations``) and carries no measures, and no null is computed.
    """
    sa, sb = _as_store(store_a), _as_store(store_b)
    if rows_a is None:
        n = check_aligned_tokens(sa, sb)
        rows_a = rows_b = np.arange(n)
    rows_a = np.asarray(rows_a, dtype=np.int64)
    rows_b = np.asarray(rows_b, dtype=np.int64)
    if rows_a.shape != rows_b.shape:
        raise SaesimError(f"rows_a and rows_b differ in length ({rows_a.size} vs {rows_b.size})")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(rows_a.size)[:max_rows])
    if sa.content_hash == sb.content_hash and np.array_equal(rows_a, rows_b):
        return {"n_rows": int(pick.size), "same_activations": True}
    x = np.concatenate(list(iter_selected_rows(sa, rows_a[pick], 4096)))
    y = np.concatenate(list(iter_selected_rows(sb, rows_b[pick], 4096)))
    res = relational_similarity(x, y, n_null=n_null, seed=seed, max_rows=max_rows, **options)
    return {"n_rows": int(pick.size), **{m: r.as_dict() for m, r in res.items()}}
