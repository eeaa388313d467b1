"""Similarity between two SAE dictionaries, in memory bounded by a budget.

An SAE dictionary is a 2-D array with one latent per row (a decoder ``W_dec``
``[n_latents, d]``, or the transposed encoder ``W_enc.T``). The work goes in
stages, one module each:

* :mod:`~saesim.similarity.scan`: the bounded-memory |cos| scan (each latent's
  top-m partners both ways, in one pass over tiles), mean max |cos| and
  best-match fractions; the memory bound is stated and kept there;
* :mod:`~saesim.similarity.matching`: one-to-one matching (exact Hungarian on a
  dense matrix that fits the budget, else the sparse top-m assignment) and
  shared latents;
* :mod:`~saesim.similarity.baseline`: the same metrics for random SAEs of the
  same shapes (closed forms, random draws, transfer from smaller draws);
* :mod:`~saesim.similarity.options`: :class:`ComparisonOptions`, every option of
  a comparison in one frozen object, passed whole through all of the above;
* :mod:`~saesim.similarity.decoders`: :func:`compare_decoders`, everything at
  once with its baseline, and :func:`excess_over_null`.

Every public name is importable from ``saesim.similarity`` itself.
"""

from __future__ import annotations

from saesim.similarity.baseline import (
    baseline_draw_shape,
    expected_max_abs_cosine,
    prob_abs_cosine_below,
    random_decoder_baseline,
    transfer_abs_cosine,
)
from saesim.similarity.decoders import NULL_METRICS, SCALAR_METRICS, compare_decoders, excess_over_null, per_latent_arrays
from saesim.similarity.matching import (
    MatchingResult,
    SharedLatentsResult,
    _hungarian_on,  # noqa: F401  (saesim.analysis.ground_truth)
    _sparse_matching,  # noqa: F401  (tests)
    one_to_one_matching,
    shared_latents,
)
from saesim.similarity.options import DEFAULT_BASELINE_DRAW_SIZE, ComparisonOptions, InvalidOption
from saesim.similarity.scan import (
    DEFAULT_MEMORY_BUDGET_MB,
    DEFAULT_THRESHOLDS,
    DEFAULT_TOP_M,
    MAX_TILE,
    MaxCosineResult,
    TopCosines,
    _fold_above_floor,  # noqa: F401  (tests)
    abs_cosine_matrix,
    best_match_frac_above,
    frac_above,
    max_abs_cosine,
    mean_max_cosine,
    normalize_rows,
    tile_shape,
    top_abs_cosines,
)

__all__ = [
    "ComparisonOptions",
    "DEFAULT_BASELINE_DRAW_SIZE",
    "DEFAULT_MEMORY_BUDGET_MB",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TOP_M",
    "InvalidOption",
    "MAX_TILE",
    "MatchingResult",
    "MaxCosineResult",
    "NULL_METRICS",
    "SCALAR_METRICS",
    "SharedLatentsResult",
    "TopCosines",
    "abs_cosine_matrix",
    "baseline_draw_shape",
    "best_match_frac_above",
    "compare_decoders",
    "excess_over_null",
    "expected_max_abs_cosine",
    "frac_above",
    "max_abs_cosine",
    "mean_max_cosine",
    "normalize_rows",
    "one_to_one_matching",
    "per_latent_arrays",
    "prob_abs_cosine_below",
    "random_decoder_baseline",
    "shared_latents",
    "tile_shape",
    "top_abs_cosines",
    "transfer_abs_cosine",
]


