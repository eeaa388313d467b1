"""Every reported column: decoder stability metrics, SAE-level measures, per-latent metrics and
relational measures, one registry of each.

* :class:`DecoderMetric`: one key of a decoder comparison
  (:func:`saesim.similarity.compare_decoders`, the pair JSONs): a number or a
  ``{threshold: number}`` dict, how its isotropic random-decoder baseline is obtained
  (:data:`BASELINE_RULES`), and its row label in ``saesim compare``. Every one gets a random
  baseline, a ratio and, against a trained null, ``_null`` and ``_excess`` (against the
  random-weights model, :data:`NULL_MODELS`, ``_randmodel`` and ``_excess_randmodel``).
* :class:`TableMetric`: a column of ``pairs.csv`` / ``stability.csv`` (saesim.report.tables), read
  from one decoder metric (at one threshold where it has them); its labels in figures and
  tables; ``summary`` puts it in ``results/summary.*`` (with ``_null``/``_excess`` columns).
* :class:`SaeMeasure`: a number per trained SAE (quality, ground truth, Fourier overlap,
  downstream loss): its source artifact and key, its statistics in ``stability.csv``, its
  ``_baseline``/``_null``/``_excess`` companions and its headers in ``results/summary.*``
  (:class:`SummaryPart` places companions apart from their value).
* :class:`PerLatentMetric`: a per-variant number of ``per_latent.csv`` that the summary copies.
* :class:`RelationalMeasure`: a measure of saesim.similarity.universality.relational, with its label.

Tables (:mod:`saesim.report.tables`), the ``saesim compare`` table (:mod:`saesim.cli`), figures and
the convergence measurement read these registries; ``tests/test_metrics.py`` checks them
against what saesim.similarity computes.

Adding a decoder metric: compute it in ``compare_decoders`` and ``random_decoder_baseline``
(saesim.similarity) and register it here; registering a :class:`TableMetric` for it gives it
columns in every table. Adding an SAE-level measure: record it in its source artifact and
register a :class:`SaeMeasure`; saes.csv, stability.csv and the summary get its columns
(``tests/test_metrics.py`` checks one end to end), with no edit of saesim.report.tables. Kept free of
heavy imports (the Snakefile imports saesim.workflow.config).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from saesim.errors import SaesimError

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
    name: str  # column of pairs.csv; stability.csv has <name>_mean, _std, _min, _max, _baseline, _ratio, _null, _excess, _lo ...
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
    name: str  # as in saesim.similarity.universality.relational.METRICS and the universality tables
    label: str  # in figures


# ---- SAE-level measures (saesim.report.tables: saes.csv, stability.csv, results/summary.*) -------

#: where an SAE measure is read from, per trained SAE (real and null)
SAE_SOURCES = {
    "sae": "the SAE folder's metrics.json (saesim.saes.training)",
    "ground_truth": "its ground_truth JSON (toy data; saesim.analysis.ground_truth), random decoders' value under 'baseline'",
    "downstream": "the experiment's downstream.json (language models; saesim.analysis.downstream), real SAEs only",
    "fourier": "fourier.csv (modular addition; saesim.analysis.fourier), the random-direction value in its own column",
}

#: where an SAE measure's columns sit in stability.csv, in this order
SAE_PLACES = {
    "quality": "before the decoder metrics (its null columns before theirs)",
    "outcome": "after the decoder metrics (its null columns after theirs)",
    "library": "after every null column",
    "data": "last: a property of the data the SAE saw",
}

#: statistics of an SAE measure over a variant's real SAEs in stability.csv ("": the mean under the bare name)
SAE_STATS = ("", "mean", "std", "baseline")
#: statistics against the trained null's SAEs: their mean, s.d. (NaN below two) and the excess over it
NULL_STATS = ("null", "null_std", "excess")
#: statistics against the random-weights model's SAEs (config model_null): their mean, s.d. and the excess over it
RANDMODEL_STATS = ("randmodel", "randmodel_std", "excess_randmodel")
#: companions of an SAE measure's value ("") in results/summary.csv
SUMMARY_STATS = ("", "baseline", "ratio", *NULL_STATS, *RANDMODEL_STATS)
#: a number's 95% interval over seed pairs (>= 3 pairs; saesim.registry.intervals.interval_stats), the
#: null's, and whether the excess over the null is distinguishable from zero (1: the interval
#: excludes the null's interval, or its mean without one; 0: they overlap; empty without an interval)
INTERVAL_STATS = ("lo", "hi", "null_lo", "null_hi", "excess_distinct")
#: companions of a table metric's value in stability.csv and results/summary.csv (summary metrics, every coordinate space), in order
METRIC_STATS = ("std", "baseline", "ratio", *NULL_STATS, *RANDMODEL_STATS, *INTERVAL_STATS)

#: how an SAE variant was trained, from each SAE's metrics.json (saes.csv, pairs.csv, stability.csv, the summary)
TRAINING_COLUMNS = ("architecture", "width", "sparsity_key", "sparsity")
#: what names an SAE variant in stability.csv and results/summary.csv (the first columns of both)
VARIANT_COLUMNS = ("hook", "variant", *TRAINING_COLUMNS)
#: what results/summary.csv puts before them: the experiment and its kind
SUMMARY_KEYS = ("experiment", "kind")
#: counts per variant in stability.csv: real SAEs, real seed pairs, null SAEs, null seed pairs,
#: random-model SAEs and seed pairs
N_SEEDS, N_PAIRS, N_NULL_SEEDS, N_NULL_PAIRS = "n_seeds", "n_pairs", "n_null_seeds", "n_null_pairs"
N_RANDMODEL_SEEDS, N_RANDMODEL_PAIRS = "n_randmodel_seeds", "n_randmodel_pairs"
#: the counts results/summary.csv shows, in order
SUMMARY_COUNTS = (N_SEEDS, N_PAIRS, N_NULL_PAIRS, N_RANDMODEL_PAIRS)


@dataclass(frozen=True)
class NullModel:
    """A chance level trained like the real SAEs on other data: the same variants, recipe and
    seed labels on another store, their seed pairs compared like the real ones. Every table
    metric and every SAE measure whose ``null`` names its statistics gets, per variant,
    ``stats`` = (its mean over the null model's pairs or SAEs, their s.d., the excess
    (value - mean) / (1 - mean)) in stability.csv and results/summary.csv."""

    role: str  # the artifact role of its SAEs and pairs (saesim.workflow.layout.ROLES)
    stats: tuple[str, str, str]  # (mean, s.d., excess) statistic names: column suffixes
    n_seeds: str  # its count columns in stability.csv
    n_pairs: str
    label: str  # in the summary's headers

    def columns(self, name: str) -> list[str]:
        """``<name>_<stat>`` of each of its statistics."""
        return [f"{name}_{stat}" for stat in self.stats]


#: role -> null model, in column order: the trained Gaussian null (results/<exp>/null/), the
#: random-weights model (results/<exp>/randmodel/, config model_null)
NULL_MODELS: dict[str, NullModel] = {
    "null": NullModel("null", NULL_STATS, N_NULL_SEEDS, N_NULL_PAIRS, "null"),
    "randmodel": NullModel("randmodel", RANDMODEL_STATS, N_RANDMODEL_SEEDS, N_RANDMODEL_PAIRS, "random model"),
}


@dataclass(frozen=True)
class SaeMeasure:
    """A number per trained SAE, read from one of its artifacts (:data:`SAE_SOURCES`); every
    column it gets is generated from this entry (saesim.report.tables):

    * ``saes.csv``: ``<name>`` per SAE and, with ``baseline``, ``<name>_baseline`` (the same
      number for random decoders of the same shape); per source and place, values then baselines.
    * ``stability.csv``, per variant and in its ``place``: ``stats`` over the real SAEs
      (:data:`SAE_STATS`; ``baseline`` is the mean of ``<name>_baseline``) and ``null``
      (:data:`NULL_STATS`: over the null SAEs of the variant; ``excess`` =
      ``(mean - null) / (1 - null)``; :data:`RANDMODEL_STATS` likewise over the random-weights
      model's SAEs).
    * ``results/summary.csv``: ``summary`` (:data:`SUMMARY_STATS`): the value (``""``: the mean
      over seeds, stability's ``<name>_mean``) and companions, NaN where an experiment has
      none; SAE-quality measures before the decoder metrics, the others after them, in
      registration order (a :class:`SummaryPart` places more companions later).
    * per-experiment ``summary.md``: ``markdown``, ``(stability statistic, header)`` pairs;
      ``results/summary.{md,html}``: ``display`` ``(header, format)`` of the value,
      ``display_null`` the header of its null, ``cell`` ``(label, format)`` in the ground-truth
      column: ``label value (random)`` and ``null: label null``, or with a ``ratio`` companion
      ``label value (random, ratio×)`` and ``null null ± s.d. (excess e)``.
    """

    name: str
    label: str  # what it is (docs)
    source: str  # a key of SAE_SOURCES
    place: str = "quality"  # a key of SAE_PLACES
    key: str | None = None  # its key or column in the source (default: name)
    baseline: bool = False  # the source records random decoders' value (ground_truth: under "baseline")
    baseline_key: str | None = None  # fourier.csv: the column of that value
    optional: bool = False  # older sources may lack it (and its baseline): NaN, no baseline column
    stats: tuple[str, ...] = ("mean",)
    null: tuple[str, ...] = ()
    summary: tuple[str, ...] = ()
    markdown: tuple[tuple[str, str], ...] = ()
    display: tuple[str, str] | None = None
    display_null: str | None = None
    cell: tuple[str, str] | None = None

    @property
    def source_key(self) -> str:
        return self.key or self.name

    def column(self, stat: str) -> str:
        """``<name>_<stat>``; ``<name>`` for the statistic ``""``."""
        return f"{self.name}_{stat}" if stat else self.name


@dataclass(frozen=True)
class SummaryPart:
    """More columns of a registered SAE measure, placed where this part is registered instead of
    beside its value: ``summary`` statistics in results/summary.csv, ``markdown`` columns in the
    per-experiment summary.md (the layout the tables had before this registry)."""

    measure: str
    summary: tuple[str, ...] = ()
    markdown: tuple[tuple[str, str], ...] = ()


#: name -> entry, in registration order (the order of table columns and CLI rows)
DECODER_METRICS: dict[str, DecoderMetric] = {}
TABLE_METRICS: dict[str, TableMetric] = {}
RELATIONAL_MEASURES: dict[str, RelationalMeasure] = {}
SAE_MEASURES: dict[str, SaeMeasure] = {}
_REGISTRIES = {DecoderMetric: DECODER_METRICS, TableMetric: TABLE_METRICS, RelationalMeasure: RELATIONAL_MEASURES,
               SaeMeasure: SAE_MEASURES}
#: ``(measure, statistics)`` of results/summary.csv and ``(measure, ((statistic, header), ...))``
#: of the per-experiment summary.md, in order (a measure's own part, then any SummaryPart)
SUMMARY_PARTS: list[tuple[SaeMeasure, tuple[str, ...]]] = []
MARKDOWN_PARTS: list[tuple[SaeMeasure, tuple[tuple[str, str], ...]]] = []


def register(entry):
    """Register a DecoderMetric, TableMetric, RelationalMeasure, PerLatentMetric, SaeMeasure or
    SummaryPart; returns it."""
    if isinstance(entry, SummaryPart):
        _register_part(entry)
        return entry
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
    if isinstance(entry, SaeMeasure):
        _check_sae_measure(entry)
    registry[entry.name] = entry
    if isinstance(entry, SaeMeasure):
        _register_part(SummaryPart(entry.name, entry.summary, entry.markdown))
    return entry


def unregister(entry) -> None:
    """Remove an entry (tests register and remove throwaway ones; an SAE measure with its parts)."""
    _REGISTRIES[type(entry)].pop(entry.name, None)
    if isinstance(entry, SaeMeasure):
        SUMMARY_PARTS[:] = [p for p in SUMMARY_PARTS if p[0].name != entry.name]
        MARKDOWN_PARTS[:] = [p for p in MARKDOWN_PARTS if p[0].name != entry.name]


def table_metric(name: str) -> TableMetric:
    try:
        return TABLE_METRICS[name]
    except KeyError:
        raise SaesimError(f"unknown stability metric {name!r}; known: {', '.join(TABLE_METRICS)}") from None


def summary_metrics() -> list[TableMetric]:
    """The table metrics of results/summary.*, in registration order."""
    return [m for m in TABLE_METRICS.values() if m.summary is not None]


register(DecoderMetric("mmcs", "mean max |cos| (symmetric)", "closed_form"))
register(DecoderMetric("mmcs_a_to_b", "mean max |cos| A->B", "closed_form"))
register(DecoderMetric("mmcs_b_to_a", "mean max |cos| B->A", "closed_form"))
register(DecoderMetric("hungarian_mean_cos", "one-to-one mean |cos|", "matching"))
register(DecoderMetric("frac_matched_above", "  matched pairs |cos| >= {t}", "matching", thresholded=True))
register(DecoderMetric("frac_best_match_above", "  best match |cos| >= {t}", "closed_form", thresholded=True))
register(DecoderMetric("shared_latents_frac", "shared latents (>= {shared_threshold:g})", "shared"))

register(TableMetric("mmcs", "mmcs", "mean max |cos| (PWMCC)", "MMCS", "#4C72B0",
                     markdown=("mean", "baseline", "ratio"), summary="mean max |cos|"))
#: the cross-seed PW-MCC that saesim.report.tables.pwmcc_vs_gtmcc sets against GT-MCC (Song et al. 2025)
PWMCC = register(TableMetric("hungarian_mean_cos", "hungarian_mean_cos", "Hungarian mean matched |cos|", "Hungarian", "#DD8452",
                             summary="Hungarian matched |cos|", summary_short="Hungarian"))
register(TableMetric("frac_matched_0.7", "frac_matched_above", "fraction matched at |cos| >= 0.7", "matched >= 0.7", "#55A868",
                     threshold="0.7"))

# ---- per-latent stability (saesim.analysis.per_latent, docs/per-latent.md) ----------------------------


@dataclass(frozen=True)
class PerLatentMetric:
    """A per-variant number of per_latent.csv (saesim.analysis.per_latent.variant_summary) that goes into
    results/summary.*: its mean over real SAEs (``per="sae"``) or seed pairs (``per="pair"``), the
    95% interval (``_lo``/``_hi``, >= 3 seed pairs), the null's (``_null``, ``_null_lo``,
    ``_null_hi``), ``_excess_distinct`` (1: the interval excludes the null, 0: they overlap) and,
    where ``reference`` is set, random decoders' value (``_random``) or the isotropic chance (``_chance``).

    ``spaces=True``: also measured with partners found in every non-raw coordinate system of
    :data:`COORDINATE_SPACES` (decoders mapped by saesim.similarity.geometry, the threshold
    calibrated on the null's SAEs in that space); :func:`per_latent_metrics` generates one metric
    per space, ``<name>_<suffix>`` (e.g. ``frac_stable_white``), with the same companions
    (``_random``: isotropic random decoders in that space)."""

    name: str
    label: str  # in figures and the summary's legend
    per: str  # "sae" or "pair"
    reference: str | None = None  # None, "random" or "chance"
    #: its column in results/summary.{md,html}: (header, the cell of a summary row); None: not shown
    cell: tuple[str, Callable[[Mapping[str, Any]], str]] | None = None
    spaces: bool = False  # also in each non-raw coordinate space (generated by per_latent_metrics)
    base: str | None = None  # a generated metric: the registered metric it measures in ``space``
    space: str = "raw"  # the coordinate space (a key of COORDINATE_SPACES) its partners are found in

    #: suffixes of the columns each metric has in per_latent.csv and results/summary.csv (INTERVAL_STATS and the null)
    STATS = (*INTERVAL_STATS[:2], "null", *INTERVAL_STATS[2:])

    def column(self, stat: str) -> str:
        return f"{self.name}_{stat}"

    def columns(self) -> list[str]:
        ref = [self.column(self.reference)] if self.reference else []
        return [self.name, *(self.column(s) for s in self.STATS), *ref]


PER_LATENT_METRICS: dict[str, PerLatentMetric] = {}
_REGISTRIES[PerLatentMetric] = PER_LATENT_METRICS


#: the stability threshold of per_latent.csv (its column ``threshold``) in results/summary.csv
PER_LATENT_THRESHOLD = "per_latent_threshold"


def per_latent_metrics() -> list[PerLatentMetric]:
    """Every per-variant number of per_latent.csv: the registered metrics, then, for each non-raw
    coordinate space, those registered with ``spaces=True`` measured in it (``<name>_<suffix>``)."""
    out = list(PER_LATENT_METRICS.values())
    for space in COORDINATE_SPACES.values():
        if not space.suffix:
            continue
        out += [replace(m, name=space.column(m.name), label=f"{m.label}, {space.label}", cell=None, spaces=False,
                        base=m.name, space=space.name)
                for m in PER_LATENT_METRICS.values() if m.spaces]
    return out


def per_latent_thresholds() -> dict[str, str]:
    """``{column of per_latent.csv: column of results/summary.csv}`` of the stability thresholds:
    ``threshold`` (raw) and ``threshold_<suffix>`` per non-raw coordinate space."""
    return {space.column("threshold"): space.column(PER_LATENT_THRESHOLD) for space in COORDINATE_SPACES.values()}


def per_latent_summary_columns() -> list[str]:
    """Columns results/summary.csv copies from per_latent.csv (NaN where an experiment has none):
    the thresholds (:func:`per_latent_thresholds`), then every metric of :func:`per_latent_metrics`."""
    return [*per_latent_thresholds().values(), *(c for m in per_latent_metrics() for c in m.columns())]


# ---- formatting of summary cells (results/summary.{md,html}; saesim.report.tables) ------------------


def is_missing(x) -> bool:
    """None or a float NaN (a cell with nothing to show)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_number(x, spec: str = ".3f") -> str:
    """``x`` in ``spec``; – where missing."""
    return "–" if is_missing(x) else format(x, spec)


def format_interval(lo, hi, spec: str = ".2f") -> str:
    """`` [lo, hi]`` in ``spec``; empty where either end is missing."""
    return "" if is_missing(lo) or is_missing(hi) else f" [{lo:{spec}}, {hi:{spec}}]"


def distinct_mark(flag) -> str:
    """``*`` where an interval excludes the null's (``<m>_excess_distinct`` is 1), else empty."""
    return "*" if flag == 1.0 else ""


def _stable_cell(row) -> str:
    """``frac [lo, hi] (null n; EV share e, null e0)``, ``*`` where the excess over the null is
    distinguishable from zero; – without per-latent results."""
    m, share = PER_LATENT_METRICS["frac_stable"], PER_LATENT_METRICS["ev_share_stable"]
    if is_missing(row.get(m.name)):
        return "–"
    cell = f"{row[m.name]:.2f}{format_interval(row[m.column('lo')], row[m.column('hi')])}"
    cell += distinct_mark(row.get(m.column("excess_distinct")))
    cell += f" (null {format_number(row[m.column('null')], '.2f')}; EV share {format_number(row[share.name], '.2f')}"
    cell += f", null {format_number(row[share.column('null')], '.2f')})"
    return cell


def _subspace_cell(row) -> str:
    """``agreement [lo, hi] (chance c; null n)``; – without per-latent results."""
    m = PER_LATENT_METRICS["unstable_subspace"]
    if is_missing(row.get(m.name)):
        return "–"
    return (f"{row[m.name]:.2f}{format_interval(row[m.column('lo')], row[m.column('hi')])}"
            f" (chance {format_number(row[m.column('chance')], '.2f')}; null {format_number(row[m.column('null')], '.2f')})")


register(PerLatentMetric("frac_stable", "stable latents (reappear in every other seed)", "sae", "random",
                         cell=("stable latents [95% CI] (null; EV share, null)", _stable_cell), spaces=True))
register(PerLatentMetric("frac_stable_half", "latents reappearing in at least half of the other seeds", "sae", "random"))
register(PerLatentMetric("ev_share_stable", "explained-variance share of the stable latents", "sae", spaces=True))
register(PerLatentMetric("firing_share_stable", "firing share of the stable latents", "sae"))
register(PerLatentMetric("reappear_mean", "mean reappearance probability", "pair", "random", spaces=True))
register(PerLatentMetric("unstable_subspace", "unstable subspace agreement tr(P_a P_b)/r", "pair", "chance",
                         cell=("unstable subspace [95% CI] (chance; null)", _subspace_cell)))

register(RelationalMeasure("svcca", "SVCCA"))
register(RelationalMeasure("rsa", "RSA (Spearman)"))
register(RelationalMeasure("mutual_knn", "mutual kNN (Jaccard)"))
register(RelationalMeasure("cka", "linear CKA"))


# ---- coordinate systems of the decoder metrics (saesim.similarity.geometry) ---------------------------


@dataclass(frozen=True)
class CoordinateSpace:
    """A coordinate system the decoder metrics are also measured in (saesim.similarity.geometry).

    Each table metric ``m`` gets the columns ``m_<suffix>`` (value), ``_std``, ``_baseline``
    (isotropic random decoders in that space), ``_ratio``, ``_null`` (the trained null's SAEs
    measured the same way), ``_null_std``, ``_excess`` and the interval columns
    (:data:`INTERVAL_STATS`) in stability.csv and summary.csv.
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



def space_columns() -> list[str]:
    """Columns ``<metric>_<suffix>[_<stat>]`` of every non-raw space and table metric, in order."""
    out = []
    for space in COORDINATE_SPACES.values():
        if not space.suffix:
            continue
        for m in TABLE_METRICS.values():
            col = space.column(m.name)
            out += [col, *(f"{col}_{s}" for s in METRIC_STATS)]
    return out


def _check_sae_measure(m: SaeMeasure) -> None:
    for field, value, allowed in (("source", (m.source,), SAE_SOURCES), ("place", (m.place,), SAE_PLACES),
                                  ("stats", m.stats, SAE_STATS), ("null", m.null, (*NULL_STATS, *RANDMODEL_STATS)),
                                  ("summary", m.summary, SUMMARY_STATS),
                                  ("markdown", [s for s, _ in m.markdown], (*SAE_STATS, *NULL_STATS, *RANDMODEL_STATS))):
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise SaesimError(f"SAE measure {m.name}: {field} {unknown} not among {list(allowed)}")
    if m.display_null is not None and (m.display is None or "null" not in m.summary):
        raise SaesimError(f"SAE measure {m.name}: display_null needs a display (its format) and a 'null' summary column")
    if m.null and "mean" not in m.stats:
        raise SaesimError(f"SAE measure {m.name}: null statistics need the 'mean' statistic (the excess is over it)")
    if "baseline" in (*m.stats, *m.summary) and not (m.baseline or m.baseline_key):
        raise SaesimError(f"SAE measure {m.name}: a 'baseline' statistic needs baseline=True (or baseline_key)")


def _register_part(part: SummaryPart) -> None:
    m = SAE_MEASURES.get(part.measure)
    if m is None:
        raise SaesimError(f"summary part: {part.measure!r} is not an SAE measure; known: {', '.join(SAE_MEASURES)}")
    if part.summary:
        SUMMARY_PARTS.append((m, part.summary))
    if part.markdown:
        MARKDOWN_PARTS.append((m, part.markdown))


def sae_measures(source: str | None = None, place: str | None = None) -> list[SaeMeasure]:
    """The registered SAE measures of one source and / or place, in registration order."""
    return [m for m in SAE_MEASURES.values() if source in (None, m.source) and place in (None, m.place)]


def summary_stats(m: SaeMeasure) -> list[str]:
    """An SAE measure's statistics in results/summary.csv, over all its parts."""
    return [stat for part, stats in SUMMARY_PARTS if part is m for stat in stats]


def sae_summary_columns(quality: bool) -> list[str]:
    """Summary columns of the SAE measures placed before (``quality``) or after the decoder metrics."""
    return [m.column(s) for m, stats in SUMMARY_PARTS if (m.place == "quality") == quality for s in stats]


L0 = register(SaeMeasure("l0", "mean number of active latents per token", "sae", stats=("mean", "std"), null=("null",),
                         summary=("", "null"), markdown=(("mean", "L0"),), display=("L0", ".1f")))
register(SaeMeasure("explained_variance", "fraction of the activations' variance the reconstruction explains", "sae",
                    null=(*NULL_STATS, "randmodel"), summary=("", *NULL_STATS, "randmodel"), markdown=(("mean", "expl. var."), ("null", "expl. var. null")),
                    display=("expl. var.", ".3f"), display_null="expl. var. null"))
register(SaeMeasure("mse", "mean squared reconstruction error", "sae", stats=()))
register(SaeMeasure("dead_fraction", "fraction of latents that never fire on the evaluation rows", "sae",
                    summary=("",), markdown=(("mean", "dead"),), display=("dead", ".2f")))
register(SaeMeasure("training_seconds", "wall time of training", "sae", stats=()))
register(SaeMeasure("gt_mean_max_cos", "mean over true features of the best |cos| with any latent", "ground_truth", "outcome",
                    baseline=True, stats=("mean", "baseline"), null=NULL_STATS, summary=("", "baseline", *NULL_STATS),
                    markdown=(("mean", "GT recovery (mean max cos)"), ("null", "GT null")), cell=("best cos", ".3f")))
register(SaeMeasure("gt_frac_recovered", "fraction of true features with a latent at |cos| >= 0.9", "ground_truth", "outcome",
                    baseline=True, stats=("mean", "baseline"), null=NULL_STATS, summary=("", "baseline", *NULL_STATS),
                    markdown=(("mean", "GT recovered >= 0.9"),), cell=("recovered", ".2f")))
register(SummaryPart("gt_mean_max_cos", markdown=(("baseline", "GT random"),)))
register(SaeMeasure("fourier_overlap", "mean Fourier overlap of decoder rows with the key-frequency subspace", "fourier", "outcome",
                    key="act_mean_overlap", baseline_key="act_random_baseline", stats=(), summary=("", "baseline", "ratio"),
                    cell=("Fourier overlap", ".3f")))
register(SaeMeasure("ce_loss_recovered", "fraction of the zero-ablation cross-entropy loss the SAE recovers", "downstream",
                    "outcome", summary=("",)))
register(SaeMeasure("kl_div", "KL divergence of the spliced model's next-token distribution from the clean one", "downstream",
                    "outcome", summary=("",)))
register(SaeMeasure("ce_loss_delta", "cross-entropy loss with the SAE spliced in minus the clean loss", "downstream", "outcome",
                    summary=("",)))
register(SaeMeasure("ce_clean", "the clean model's cross-entropy loss", "downstream", "outcome"))
register(SaeMeasure("ce_zero", "the cross-entropy loss with the hook zero-ablated", "downstream", "outcome"))
register(SummaryPart("fourier_overlap", summary=NULL_STATS))
GT_MCC = register(SaeMeasure("gt_mcc", "sae_lens.synthetic's mean correlation coefficient with the true features", "ground_truth",
                             "library", baseline=True, optional=True, stats=("mean", "std", "baseline"), summary=("", "baseline"),
                             markdown=(("mean", "GT-MCC"), ("baseline", "GT-MCC random"))))
register(SaeMeasure("gt_uniqueness", "sae_lens.synthetic's uniqueness of the latents' best true features", "ground_truth",
                    "library", baseline=True, optional=True, stats=("mean", "std", "baseline"), summary=("",),
                    markdown=(("mean", "uniqueness"),)))
register(SaeMeasure("gt_f1", "sae_lens.synthetic's F1 of latents against true features", "ground_truth", "library",
                    optional=True, stats=("mean", "std"), summary=("",), markdown=(("mean", "F1"),)))
register(SaeMeasure("gt_precision", "sae_lens.synthetic's precision of latents against true features", "ground_truth",
                    "library", optional=True, stats=("mean", "std")))
register(SaeMeasure("gt_recall", "sae_lens.synthetic's recall of latents against true features", "ground_truth",
                    "library", optional=True, stats=("mean", "std")))
TRUE_L0 = register(SaeMeasure("true_l0", "mean number of active true features per token in the store", "ground_truth", "data",
                              optional=True, stats=("",)))


def excess(value, null):
    """The excess of a value over the trained null's, ``(value - null) / (1 - null)``: 0 at the
    null, 1 at perfect agreement (NaN without a null or at a null of 1); numbers or arrays. The
    one definition of ``_excess`` (tables, convergence, and JSON via :func:`excess_or_none`)."""
    import numpy as np

    value = np.asarray(value, dtype=float)
    null = np.asarray(null, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(null < 1, (value - null) / (1 - null), np.nan)
    return out.item() if out.ndim == 0 else out


def excess_or_none(value, null) -> float | None:
    """:func:`excess` of two scalars for a JSON document: None where either is missing or not
    finite, or the null is 1 (no room above it)."""
    if value is None or null is None:
        return None
    out = excess(float(value), float(null))
    return out if math.isfinite(out) else None


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` for a table, NaN where the baseline is not positive."""
    return value / baseline if baseline > 0 else float("nan")


def ratio_or_none(value, baseline) -> float | None:
    """``value / baseline`` for a JSON document: None where either is missing, or the baseline
    is 0 or not finite."""
    if value is None or baseline is None or not math.isfinite(baseline) or baseline == 0:
        return None
    return float(value / baseline)
