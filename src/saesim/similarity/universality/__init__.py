"""Feature universality: do two SAEs (other seeds, widths, layers, models) learn the same features?

Latents are paired by the exact Pearson correlation of their activations on
aligned tokens (streamed, sparse), filtered, and the paired decoder rows are
compared with relational measures (SVCCA, RSA, mutual kNN, linear CKA) against
random pairings.  Entry points:

* :func:`compare_by_activations` - two stores + two SAEs -> one result (rule scripts)
* :func:`compare_codes` - precomputed sparse codes + decoders -> one result
* :func:`compare_neuron_activations` - the same measures on raw activations
* :func:`check_aligned_tokens`, :func:`align_by_char_offsets` - token alignment

Nothing here imports torch or sae-lens until an SAE folder is encoded.
"""

from saesim.similarity.universality.alignment import TokenAlignment, align_by_char_offsets, check_aligned_tokens
from saesim.similarity.universality.codes import ArraySAE, LatentStats, SparseCodes, collect_codes, decoder_of, encode_sparse, load_sae
from saesim.similarity.universality.across_models import (
    CodeComparisonOptions,
    UniversalityResult,
    compare_by_activations,
    compare_codes,
    compare_neuron_activations,
)
from saesim.similarity.universality.correlation import BestPartners, CrossCorrelation, cross_correlation, one_to_one_pairs
from saesim.similarity.universality.filters import is_junk_text, junk_dominated_latents, junk_token_ids, rare_latents, top_activating_rows
from saesim.similarity.universality.relational import (
    METRICS,
    NullComparison,
    linear_cka,
    mutual_knn_jaccard,
    permutation_p_value,
    relational_similarity,
    rsa,
    svcca,
)

__all__ = [
    "ArraySAE",
    "BestPartners",
    "CodeComparisonOptions",
    "CrossCorrelation",
    "LatentStats",
    "METRICS",
    "NullComparison",
    "SparseCodes",
    "TokenAlignment",
    "UniversalityResult",
    "align_by_char_offsets",
    "check_aligned_tokens",
    "collect_codes",
    "compare_by_activations",
    "compare_codes",
    "compare_neuron_activations",
    "cross_correlation",
    "decoder_of",
    "encode_sparse",
    "is_junk_text",
    "junk_dominated_latents",
    "junk_token_ids",
    "linear_cka",
    "load_sae",
    "mutual_knn_jaccard",
    "one_to_one_pairs",
    "permutation_p_value",
    "rare_latents",
    "relational_similarity",
    "rsa",
    "svcca",
    "top_activating_rows",
]
