"""Decoder stability metrics and relational measures: one registry of each.

* :class:`DecoderMetric`: one key of a decoder comparison
  (:func:`saesim.similarity.compare_decoders`, the pair JSONs): a number or a
  ``{threshold: number}`` dict, how its isotropic random-decoder baseline is obtained
  (:data:`BASELINE_RULES`), and its row label in ``saesim compare``. Every one gets a random
  baseline, a ratio and, against a trained null, ``_null`` and ``_excess``.
* :class:`TableMetric`: a column of ``pairs.csv`` / ``stability.csv`` (saesim.tables), read
  from one decoder metric (at one threshold where it has them); its labels in figures and
  tables; ``summary`` puts it in ``results/summary.*`` (with ``_null``/``_excess`` columns).
* :class:`RelationalMeasure`: a measure of saesim.universality.relational, with its label.

Tables (:mod:`saesim.tables`), the ``saesim compare`` table (:mod:`saesim.cli`), figures and
the convergence measurement read these registries; ``tests/test_metrics.py`` checks them
against what saesim.similarity computes.

Adding a decoder metric: compute it in ``compare_decoders`` and ``random_decoder_baseline``
(saesim.similarity) and register it here; registering a :class:`TableMetric` for it gives it
columns in every table. Kept free of heavy imports (the Snakefile imports saesim.config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from .errors import SaesimError

#: how each decoder metric's random baseline (random_decoder_baseline: Gaussian decoders of the same shapes) is obtained
BASELINE_RULES = {
    "closed_form": "exact expectation for random unit rows (no draws; the baseline's method: closed_form)",
    "matching": "mean over random pairs matched like the real one; from smaller draws, transferred (method: empirical or transferred)",
    "shared": "0 where random decoder and encoder pairs cannot reach the threshold (method: bound), else measured (empirical)",
}


@dataclass(frozen=True)
class DecoderMetric:
    name: str  # key in a compare_decoders result and in its baseline
    #: row label of ``saesim compare``; ``{t}`` is the threshold, other fields come from the result
    label: str
    baseline: str  # a key of BASELINE_RULES
    thresholded: bool = False  # a {threshold: value} dict; otherwise a number (with a ratio to its baseline)

    def __post_init__(self) -> None:
        if self.baseline not in BASELINE_RULES:
            raise SaesimError(f"decoder metric {self.name}: baseline must be one of {list(BASELINE_RULES)}, got {self.baseline!r}")


#: the statistics of a table metric in ``stability.csv`` that the per-experiment summary.md may show
MARKDOWN_STATS = {"mean": "{short}", "baseline": "{short} random", "ratio": "{short} / random"}


@dataclass(frozen=True)
class TableMetric:
    name: str  # column of pairs.csv; stability.csv has <name>_mean, _std, _min, _max, _baseline, _ratio, _null, _excess ...
    metric: str  # the DecoderMetric it reads
    label: str  # axis and colour-bar label in figures
    short: str  # header in the per-experiment summary.md
    color: str  # line colour in the convergence figure
    threshold: str | None = None  # key of a thresholded metric
    markdown: tuple[str, ...] = ("mean", "baseline")  # stability columns summary.md shows (MARKDOWN_STATS)
    #: label in results/summary.{csv,md,html} (value, baseline, ratio, null, excess); None: not there.
    #: These headline metrics also get their null and excess in summary.md.
    summary: str | None = None
    summary_short: str | None = None  # label of its null column in the summary (default: summary)

    @property
    def path(self) -> tuple[str, ...]:
        return (self.metric,) if self.threshold is None else (self.metric, self.threshold)

    def value(self, result: Mapping[str, Any]) -> Any:
        """Its value in a comparison result or baseline (KeyError where absent)."""
        out: Any = result
        for key in self.path:
            out = out[key]
        return out

    def value_or_none(self, result: Mapping[str, Any]) -> Any:
        out: Any = result
        for key in self.path:
            out = out.get(key) if isinstance(out, Mapping) else None
        return out

    def markdown_label(self, stat: str) -> str:
        return MARKDOWN_STATS[stat].format(short=self.short)


@dataclass(frozen=True)
class RelationalMeasure:
    name: str  # as in saesim.universality.relational.METRICS and the universality tables
    label: str  # in figures


#: name -> entry, in registration order (the order of table columns and CLI rows)
DECODER_METRICS: dict[str, DecoderMetric] = {}
TABLE_METRICS: dict[str, TableMetric] = {}
RELATIONAL_MEASURES: dict[str, RelationalMeasure] = {}
_REGISTRIES = {DecoderMetric: DECODER_METRICS, TableMetric: TABLE_METRICS, RelationalMeasure: RELATIONAL_MEASURES}


def register(entry):
    """Register a DecoderMetric, TableMetric, RelationalMeasure or PerLatentMetric; returns it."""
    registry = _REGISTRIES[type(entry)]
    if entry.name in registry:
        raise SaesimError(f"{type(entry).__name__} {entry.name!r} is registered twice")
    if isinstance(entry, TableMetric):
        base = DECODER_METRICS.get(entry.metric)
        if base is None:
            raise SaesimError(f"table metric {entry.name}: {entry.metric!r} is not a decoder metric; known: {', '.join(DECODER_METRICS)}")
        if base.thresholded != (entry.threshold is not None):
            raise SaesimError(f"table metric {entry.name}: {entry.metric} {'needs' if base.thresholded else 'takes no'} threshold")
        unknown = [s for s in entry.markdown if s not in MARKDOWN_STATS]
        if unknown:
            raise SaesimError(f"table metric {entry.name}: markdown {unknown} not among {list(MARKDOWN_STATS)}")
    registry[entry.name] = entry
    return entry


def unregister(entry) -> None:
    """Remove an entry (tests register and remove throwaway ones)."""
    _REGISTRIES[type(entry)].pop(entry.name, None)


def table_metric(name: str) -> TableMetric:
    try:
        return TABLE_METRICS[name]
    except KeyError:
        raise SaesimError(f"unknown stability metric {name!r}; known: {', '.join(TABLE_METRICS)}") from None


def summary_metrics() -> list[TableMetric]:
    """The table metrics of results/summary.*, in registration order."""
    return [m for m in TABLE_METRICS.values() if m.summary is not None]


class TableMetricView(Mapping):
    """``{table metric name: f(metric)}`` that follows the registry (entries registered later appear)."""

    def __init__(self, f: Callable[[TableMetric], Any]):
        self._f = f

    def __getitem__(self, name: str) -> Any:
        return self._f(TABLE_METRICS[name])

    def __iter__(self) -> Iterator[str]:
        return iter(list(TABLE_METRICS))

    def __len__(self) -> int:
        return len(TABLE_METRICS)


register(DecoderMetric("mmcs", "mean max |cos| (symmetric)", "closed_form"))
register(DecoderMetric("mmcs_a_to_b", "mean max |cos| A->B", "closed_form"))
register(DecoderMetric("mmcs_b_to_a", "mean max |cos| B->A", "closed_form"))
register(DecoderMetric("hungarian_mean_cos", "one-to-one mean |cos|", "matching"))
register(DecoderMetric("frac_matched_above", "  matched pairs |cos| >= {t}", "matching", thresholded=True))
register(DecoderMetric("frac_best_match_above", "  best match |cos| >= {t}", "closed_form", thresholded=True))
register(DecoderMetric("shared_latents_frac", "shared latents (>= {shared_threshold:g})", "shared"))

register(TableMetric("mmcs", "mmcs", "mean max |cos| (PWMCC)", "MMCS", "#4C72B0",
                     markdown=("mean", "baseline", "ratio"), summary="mean max |cos|"))
register(TableMetric("hungarian_mean_cos", "hungarian_mean_cos", "Hungarian mean matched |cos|", "Hungarian", "#DD8452",
                     summary="Hungarian matched |cos|", summary_short="Hungarian"))
register(TableMetric("frac_matched_0.7", "frac_matched_above", "fraction matched at |cos| >= 0.7", "matched >= 0.7", "#55A868",
                     threshold="0.7"))

# ---- per-latent stability (saesim.per_latent, docs/per-latent.md) ----------------------------


@dataclass(frozen=True)
class PerLatentMetric:
    """A per-variant number of per_latent.csv (saesim.per_latent.variant_summary) that goes into
    results/summary.*: its mean over real SAEs (``per="sae"``) or seed pairs (``per="pair"``), the
    95% interval (``_lo``/``_hi``, >= 3 seed pairs), the null's (``_null``, ``_null_lo``,
    ``_null_hi``), ``_excess_distinct`` (1: the interval excludes the null, 0: they overlap) and,
    where ``reference`` is set, random decoders' value (``_random``) or the isotropic chance (``_chance``)."""

    name: str
    label: str  # in figures and the summary's legend
    per: str  # "sae" or "pair"
    reference: str | None = None  # None, "random" or "chance"

    #: suffixes of the columns each metric has in per_latent.csv and results/summary.csv
    STATS = ("lo", "hi", "null", "null_lo", "null_hi", "excess_distinct")

    def columns(self) -> list[str]:
        ref = [f"{self.name}_{self.reference}"] if self.reference else []
        return [self.name, *(f"{self.name}_{s}" for s in self.STATS), *ref]


PER_LATENT_METRICS: dict[str, PerLatentMetric] = {}
_REGISTRIES[PerLatentMetric] = PER_LATENT_METRICS


def per_latent_summary_columns() -> list[str]:
    """Columns results/summary.csv copies from per_latent.csv (NaN where an experiment has none)."""
    return ["per_latent_threshold", *(c for m in PER_LATENT_METRICS.values() for c in m.columns())]


register(PerLatentMetric("frac_stable", "stable latents (reappear in every other seed)", "sae", "random"))
register(PerLatentMetric("frac_stable_half", "latents reappearing in at least half of the other seeds", "sae", "random"))
register(PerLatentMetric("ev_share_stable", "explained-variance share of the stable latents", "sae"))
register(PerLatentMetric("firing_share_stable", "firing share of the stable latents", "sae"))
register(PerLatentMetric("reappear_mean", "mean reappearance probability", "pair", "random"))
register(PerLatentMetric("unstable_subspace", "unstable subspace agreement tr(P_a P_b)/r", "pair", "chance"))

register(RelationalMeasure("svcca", "SVCCA"))
register(RelationalMeasure("rsa", "RSA (Spearman)"))
register(RelationalMeasure("mutual_knn", "mutual kNN (Jaccard)"))
register(RelationalMeasure("cka", "linear CKA"))


# ---- coordinate systems of the decoder metrics (saesim.geometry) ---------------------------


@dataclass(frozen=True)
class CoordinateSpace:
    """A coordinate system the decoder metrics are also measured in (saesim.geometry).

    Each table metric ``m`` gets the columns ``m_<suffix>`` (value), ``_std``, ``_baseline``
    (isotropic random decoders in that space), ``_ratio``, ``_null`` (the trained null's SAEs
    measured the same way), ``_null_std`` and ``_excess`` in stability.csv and summary.csv.
    """

    name: str  # key under "spaces" in a pair / baseline JSON
    suffix: str  # column suffix; "" for raw (the plain columns)
    label: str  # in figures

    def column(self, metric: str) -> str:
        return f"{metric}_{self.suffix}" if self.suffix else metric


#: name -> space, raw first
COORDINATE_SPACES: dict[str, CoordinateSpace] = {
    s.name: s
    for s in (
        CoordinateSpace("raw", "", "raw"),
        CoordinateSpace("mean_removed", "mr", "mean removed"),
        CoordinateSpace("whitened", "white", "whitened"),
    )
}

#: per-space statistics of each table metric in stability.csv and summary.csv, in order
SPACE_STATS = ("std", "baseline", "ratio", "null", "null_std", "excess")


def space_columns() -> list[str]:
    """Columns ``<metric>_<suffix>[_<stat>]`` of every non-raw space and table metric, in order."""
    out = []
    for space in COORDINATE_SPACES.values():
        if not space.suffix:
            continue
        for m in TABLE_METRICS.values():
            col = space.column(m.name)
            out += [col, *(f"{col}_{s}" for s in SPACE_STATS)]
    return out
