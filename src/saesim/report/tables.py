"""Tables of SAE quality and cross-seed stability, with random baselines beside every metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from saesim.similarity.geometry import flat_space_values
from saesim.workflow.layout import ROLES, ArtifactId, identity_in, parse, sae_key_identity
from saesim.registry.metrics import (COORDINATE_SPACES, DECODER_METRICS, GT_MCC, INTERVAL_STATS, L0, MARKDOWN_PARTS,
                      METRIC_STATS, NULL_MODELS, NULL_STATS, N_PAIRS, N_SEEDS, PER_LATENT_METRICS,
                      PWMCC, NullModel, SAE_MEASURES, SAE_PLACES, SUMMARY_COUNTS, SUMMARY_KEYS, SUMMARY_PARTS, SaeMeasure,
                      TABLE_METRICS, TRAINING_COLUMNS, TRUE_L0, VARIANT_COLUMNS, distinct_mark, format_interval,
                      format_number, is_missing, per_latent_summary_columns, per_latent_thresholds, sae_measures, sae_summary_columns,
                      space_columns, summary_metrics, summary_stats, table_metric)
from saesim.registry.intervals import interval_stats
from saesim.registry.metrics import excess, ratio


def _scalar(x):
    """Baselines may store ``{"mean": .., "std": ..}`` or a plain number."""
    return x["mean"] if isinstance(x, dict) and "mean" in x else x


def _source_columns(record: dict, source: str) -> dict:
    """The SAE measures of one source (saesim.registry.metrics.SAE_MEASURES) in one of its records: per
    place, the values, then random decoders' values (``<name>_baseline``, from
    ``record["baseline"]``); optional measures NaN where absent, their baselines left out."""
    out = {}
    for place in SAE_PLACES:
        measures = sae_measures(source, place)
        for m in measures:
            out[m.name] = record.get(m.source_key, np.nan) if m.optional else record[m.source_key]
        for m in measures:
            if m.baseline and not (m.optional and m.source_key not in record["baseline"]):
                out[m.column("baseline")] = record["baseline"][m.source_key]
    return out


def downstream_rows(downstream_files: Iterable[str]) -> pd.DataFrame:
    """One row per SAE of the ``downstream.json`` files (each SAE's identity, else its key ``hook/variant/seed<s>``)."""
    rows = []
    for path in downstream_files:
        for key, r in json.loads(Path(path).read_text())["saes"].items():
            sae = ArtifactId.from_dict(r["identity"]) if "identity" in r else sae_key_identity(key, "")
            rows.append({"hook": sae.hook, "variant": sae.variant, "seed": int(sae.seed), **_source_columns(r, "downstream")})
    return pd.DataFrame(rows, columns=["hook", "variant", "seed", *(m.name for m in sae_measures("downstream"))])


def sae_table(sae_dirs: Iterable[str], ground_truth_files: Iterable[str] = (), downstream_files: Iterable[str] = ()) -> pd.DataFrame:
    """One row per trained SAE: its SAE measures (saesim.registry.metrics.SAE_MEASURES) of each source:
    quality (metrics.json), (toy) ground-truth recovery and (language models) downstream loss."""
    rows = []
    for path in sae_dirs:
        m = json.loads((Path(path) / "metrics.json").read_text())
        key = identity_in(m, "sae", path)
        rows.append({"hook": key.hook, "variant": key.variant, "seed": int(key.seed), "null": key.null, "role": key.role,
                     **{c: m[c] for c in TRAINING_COLUMNS}, **_source_columns(m, "sae")})
    df = pd.DataFrame(rows)
    gt_rows = []
    for path in ground_truth_files:
        g = json.loads(Path(path).read_text())
        key = identity_in(g, "ground_truth", path)
        gt_rows.append({"hook": key.hook, "variant": key.variant, "seed": int(key.seed), "null": key.null,
                        **_source_columns(g, "ground_truth")})
    if gt_rows:
        df = df.merge(pd.DataFrame(gt_rows), on=["hook", "variant", "seed", "null"], how="left")
    downstream = downstream_rows(downstream_files)
    if len(downstream):  # real SAEs only
        df = df.merge(downstream.assign(role="real"), on=["hook", "variant", "seed", "role"], how="left")
    return _by_role(df, ["hook", "architecture", "width", "sparsity", "seed"])


def _by_role(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows sorted by role (real, null, randmodel: saesim.workflow.layout.ROLES), then ``keys``."""
    rank = df["role"].map({r: i for i, r in enumerate(ROLES)}).rename("_role_rank")
    return df.assign(_role_rank=rank).sort_values(["_role_rank", *keys]).drop(columns="_role_rank").reset_index(drop=True)


def pair_table(pair_files: Iterable[str], saes: pd.DataFrame) -> pd.DataFrame:
    """One row per seed pair of one variant, with every stability metric."""
    rows = []
    for path in pair_files:
        r = json.loads(Path(path).read_text())
        key = identity_in(r, "pair", path)
        row = {"hook": key.hook, "variant": key.variant, "seed_a": int(key.seeds[0]), "seed_b": int(key.seeds[1]), "null": key.null,
               "role": key.role}
        row.update({m.name: float(m.value(r)) for m in TABLE_METRICS.values()})
        row.update({name: r.get(name) for name in _untabled_decoder_metrics()})
        row.update(flat_space_values(r, TABLE_METRICS.values()))  # mean-removed / whitened (saesim.similarity.geometry)
        rows.append(row)
    df = pd.DataFrame(rows)
    info = saes.drop_duplicates(["hook", "variant"])[list(VARIANT_COLUMNS)]
    return _by_role(df.merge(info, on=["hook", "variant"], how="left"), ["hook", "architecture", "width", "sparsity", "seed_a", "seed_b"])


def _untabled_decoder_metrics() -> list[str]:
    """The decoder metrics of one number that no table metric reads: pairs.csv keeps them as recorded."""
    return [m.name for m in DECODER_METRICS.values() if not m.thresholded and m.name not in TABLE_METRICS]


def load_baselines(baseline_files: Iterable[str]) -> dict[tuple[str, int], dict]:
    """``(hook, width) -> baseline result`` of random decoders of that shape."""
    out = {}
    for path in baseline_files:
        r = json.loads(Path(path).read_text())
        if "identity" in r:  # width: that of its random decoders
            out[(r["identity"]["hook"], int(r["n_a"]))] = r
        else:
            key, extra = parse("baseline", path)
            out[(key.hook, extra["width"])] = r
    return out


def baseline_value(baseline: dict, metric: str) -> float:
    return float(_scalar(table_metric(metric).value(baseline)))


def baseline_std(baseline: dict, metric: str) -> float:
    """Standard deviation of a baseline metric over its random draws (NaN where not recorded)."""
    value = table_metric(metric).value_or_none(baseline.get("std", {}))
    return float(value) if value is not None else float("nan")


def role_rows(df: pd.DataFrame, role: str) -> pd.DataFrame:
    """The rows of one role (saesim.workflow.layout.ROLES) of a table of SAEs or pairs: column
    ``role``; tables written before it had only ``null`` (True: the trained null's rows)."""
    if "role" in df:
        return df[df["role"] == role]
    if "null" in df:
        return df[df["null"].astype(bool) == (role == "null")] if role in ("real", "null") else df.iloc[0:0]
    return df if role == "real" else df.iloc[0:0]


def real_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of real SAEs / pairs of a table that may also hold the trained null's and the random model's."""
    return role_rows(df, "real")


def null_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of null SAEs / pairs (trained on the Gaussian twin of the store)."""
    return role_rows(df, "null")


def _null_stats(value: float, null_values, stats: tuple[str, str, str] = NULL_STATS) -> dict[str, float]:
    """A null model's statistics of a value (``stats``, e.g. :data:`saesim.registry.metrics.NULL_STATS`):
    the null's mean (over its SAEs or seed pairs), its s.d. (NaN below two) and the excess over it."""
    v = pd.Series(null_values, dtype=float).dropna()
    null = v.mean() if len(v) else np.nan
    mean, std, over = stats
    return {mean: null, std: v.std(ddof=0) if len(v) >= 2 else np.nan, over: excess(value, null)}


def _add_null(row: dict, name: str, value: float, null_values, model: NullModel = NULL_MODELS["null"]) -> None:
    """``<name>_<stat>`` of a null model's statistics (:func:`_null_stats`), e.g. ``<name>_null``,
    ``<name>_null_std`` and ``<name>_excess``."""
    row.update({f"{name}_{stat}": v for stat, v in _null_stats(value, null_values, model.stats).items()})


def _add_intervals(row: dict, name: str, values, null_values) -> None:
    """``<name>_<stat>`` for :data:`saesim.registry.metrics.INTERVAL_STATS`: the 95% t-interval over the
    real seed pairs' values, the null's over its pairs (each where there are >= 3 pairs) and
    ``_excess_distinct`` (saesim.registry.intervals.interval_stats)."""
    stats = interval_stats(pd.Series(values, dtype=float).to_numpy(), pd.Series(null_values, dtype=float).to_numpy())
    row.update({f"{name}_{stat}": stats[stat] for stat in INTERVAL_STATS})


def _measure_stats(row: dict, m: SaeMeasure, group: pd.DataFrame) -> None:
    """An SAE measure's statistics over a variant's real SAEs (``m.stats``), where it was measured."""
    if m.name not in group:
        return
    for stat in m.stats:
        if stat == "std":
            row[m.column(stat)] = group[m.name].std(ddof=0)
        elif stat == "baseline":
            if m.column("baseline") in group:
                row[m.column(stat)] = group[m.column("baseline")].mean()
        else:
            row[m.column(stat)] = group[m.name].mean()


def _measure_null(row: dict, m: SaeMeasure, group: pd.DataFrame, nulls: pd.DataFrame, model: NullModel = NULL_MODELS["null"]) -> None:
    """An SAE measure's ``m.null`` statistics of one null model against the variant's SAEs of
    that model (``nulls``), where it was measured."""
    wanted = [stat for stat in m.null if stat in model.stats]
    if not wanted or m.name not in group:
        return
    stats = _null_stats(row[m.column("mean")], nulls[m.name] if len(nulls) and m.name in nulls else [], model.stats)
    row.update({m.column(stat): stats[stat] for stat in wanted})


def stability_table(saes: pd.DataFrame, pairs: pd.DataFrame, baselines: dict) -> pd.DataFrame:
    """One row per (hook, variant): the SAE measures over its seeds (saesim.registry.metrics.SAE_MEASURES,
    in their places), each stability metric's spread over seed pairs, its random baseline and the
    ratio value / baseline.

    Where ``saes`` / ``pairs`` also hold null SAEs and pairs (column ``role`` null: trained on the
    Gaussian twin of the store), each metric also gets ``<metric>_null`` (mean over null pairs;
    for SAE measures: over null SAEs), ``<metric>_null_std`` and ``<metric>_excess`` =
    (value - null) / (1 - null); NaN where there is no null. Every stability metric (in every
    coordinate space) also gets its 95% t-interval over seed pairs and the null's
    (:data:`saesim.registry.metrics.INTERVAL_STATS`, saesim.registry.intervals; NaN below three pairs).
    The same null columns for the random-weights model's (role randmodel, saesim.registry.metrics.NULL_MODELS): ``<metric>_randmodel``,
    ``<metric>_randmodel_std`` and ``<metric>_excess_randmodel``.
    """
    others = {model.role: (role_rows(saes, model.role), role_rows(pairs, model.role)) for model in NULL_MODELS.values()}
    saes, pairs = real_rows(saes), real_rows(pairs)
    rows = []
    for (hook, variant), group in saes.groupby(["hook", "variant"], sort=False):
        first = group.iloc[0]
        row = {"hook": hook, "variant": variant, **{c: first[c] for c in TRAINING_COLUMNS}, N_SEEDS: len(group)}
        row["width"] = int(row["width"])
        for m in sae_measures(place="quality"):
            _measure_stats(row, m, group)
        p = pairs[(pairs["hook"] == hook) & (pairs["variant"] == variant)]
        row[N_PAIRS] = len(p)
        base = baselines[(hook, int(first["width"]))]
        for metric in TABLE_METRICS:
            values = p[metric].to_numpy(dtype=float)
            b = baseline_value(base, metric)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=0)
            row[f"{metric}_min"] = values.min()
            row[f"{metric}_max"] = values.max()
            row[f"{metric}_baseline"] = b
            row[f"{metric}_baseline_std"] = baseline_std(base, metric)
            row[f"{metric}_ratio"] = ratio(values.mean(), b)
        for m in sae_measures(place="outcome"):
            _measure_stats(row, m, group)
        # the null models: the same variant on the Gaussian twin of the store, on the random model's store
        model_pairs = {}
        for model in NULL_MODELS.values():
            nulls, null_pairs = others[model.role]
            ng = nulls[(nulls["hook"] == hook) & (nulls["variant"] == variant)]
            npairs = null_pairs[(null_pairs["hook"] == hook) & (null_pairs["variant"] == variant)]
            model_pairs[model.role] = npairs
            row[model.n_seeds] = len(ng)
            row[model.n_pairs] = len(npairs)
            for m in sae_measures(place="quality"):
                _measure_null(row, m, group, ng, model)
            for metric in TABLE_METRICS:
                _add_null(row, metric, row[f"{metric}_mean"], npairs[metric] if len(npairs) else [], model)
                if model.role == "null":  # the intervals are against the trained Gaussian null
                    _add_intervals(row, metric, p[metric], npairs[metric] if len(npairs) else [])
            for m in sae_measures(place="outcome"):
                _measure_null(row, m, group, ng, model)
        for m in (*sae_measures(place="library"), *sae_measures(place="data")):
            _measure_stats(row, m, group)
        _add_space_columns(row, p, model_pairs, base)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["hook", "architecture", "width", "sparsity"]).reset_index(drop=True)


def _add_space_columns(row: dict, pairs: pd.DataFrame, model_pairs: dict[str, pd.DataFrame], base: dict) -> None:
    """Each table metric in each non-raw coordinate space (saesim.similarity.geometry): mean and spread over
    seed pairs, the isotropic random baseline in that space (``base["spaces"]``), the ratio, and
    each null model's pairs (``model_pairs``: role -> pairs) measured the same way (``_null``,
    ``_null_std``, ``_excess``; ``_randmodel``, ...). NaN where the pairs or baselines were
    computed without the spaces."""
    for space in COORDINATE_SPACES.values():
        if not space.suffix:
            continue
        sbase = (base.get("spaces") or {}).get(space.name)
        for m in TABLE_METRICS.values():
            col = space.column(m.name)
            values = pairs[col].to_numpy(dtype=float) if col in pairs else np.array([np.nan])
            mean = values.mean() if len(values) else np.nan
            b = float(_scalar(m.value(sbase))) if sbase is not None else np.nan
            row[col] = mean
            row[f"{col}_std"] = values.std(ddof=0) if len(values) else np.nan
            row[f"{col}_baseline"] = b
            row[f"{col}_ratio"] = ratio(mean, b)
            for model in NULL_MODELS.values():
                npairs = model_pairs.get(model.role, pd.DataFrame())
                model_values = npairs[col] if len(npairs) and col in npairs else []
                _add_null(row, col, mean, model_values, model)
                if model.role == "null":
                    _add_intervals(row, col, values, model_values)


def _markdown_columns(places: tuple[str, ...], null: bool) -> dict[str, str]:
    """Stability columns -> headers of the SAE measures of these places in summary.md
    (saesim.registry.metrics.MARKDOWN_PARTS): their statistics against the null, or the others."""
    return {m.column(stat): header for m, items in MARKDOWN_PARTS if m.place in places
            for stat, header in items if (stat in NULL_STATS) == null}


def summary_markdown(stability: pd.DataFrame, true_l0: float | None = None) -> str:
    """A readable Markdown table: every variant, its quality, and stability vs baseline."""
    cols = {"hook": "hook", "variant": "variant", **_markdown_columns(("quality",), null=False),
            **{f"{m.name}_{stat}": m.markdown_label(stat) for m in TABLE_METRICS.values() for stat in m.markdown}}
    measured = {
        **_markdown_columns(("outcome",), null=False),
        **_markdown_columns(("quality",), null=True),
        **{f"{m.name}_{stat}": f"{m.short} {stat}" for m in summary_metrics() for stat in ("null", "excess")},
        **_markdown_columns(("outcome",), null=True),
        **_markdown_columns(("library", "data"), null=False),
    }
    cols.update({k: v for k, v in measured.items() if k in stability})
    # the random-weights model's (config model_null), where the experiment has one
    model = NULL_MODELS["randmodel"]
    randmodel = {c: f"{m.short} {model.label}" + (" excess" if c.endswith(model.stats[2]) else "")
                 for m in summary_metrics() for c in (f"{m.name}_{model.stats[0]}", f"{m.name}_{model.stats[2]}")}
    cols.update({k: v for k, v in randmodel.items() if k in stability and stability[k].notna().any()})
    table = stability[list(cols)].rename(columns=cols)
    header = (
        "Cross-seed stability per SAE variant (means over seeds / seed pairs; 'random' = same metric on random decoders "
        "of the same shape; 'null' = SAEs of the same variant trained on Gaussian data with the store's mean and "
        "covariance, mean over their seed pairs; 'excess' = (value - null) / (1 - null); 'random model' = SAEs "
        "of the same variant trained on the activations of the model with re-initialised weights, where configured "
        "(model_null), with its excess the same way).\n\n"
    )
    if TRUE_L0.name in stability and stability[TRUE_L0.name].notna().any():
        true_l0 = float(stability[TRUE_L0.name].mean())  # measured in the store (hierarchies lower it)
    if true_l0 is not None:
        header += f"True L0 of the toy data: {true_l0:.2f}.\n\n"
    return header + table.to_markdown(index=False, floatfmt=".3f") + "\n"


def fourier_table(fourier_files: Iterable[str]) -> pd.DataFrame:
    """One row per SAE on the modular model: mean Fourier overlap of its decoder rows with the
    key-frequency subspace (activation and embedding versions) and the random-direction baseline."""
    rows = []
    for path in fourier_files:
        r = json.loads(Path(path).read_text())
        key = identity_in(r, "fourier", path)
        row = {"hook": key.hook, "variant": key.variant, "seed": int(key.seed), "null": key.null, "architecture": key.variant.split("-")[0]}
        for space, tag in (("activation_subspace", "act"), ("embedding_subspace", "emb")):
            s = r[space]
            row.update({
                f"{tag}_dim": s["dim"],
                f"{tag}_mean_overlap": s["mean_overlap"],
                f"{tag}_frac_above_0.5": s["frac_above_0.5"],
                f"{tag}_random_baseline": s["random_baseline"],
                f"{tag}_ratio": s["mean_overlap"] / s["random_baseline"],
            })
        row["key_frequencies"] = " ".join(map(str, r["key_frequencies"]))
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["null", "hook", "variant", "seed"]).reset_index(drop=True)


# ---- cross-experiment summary -------------------------------------------------------------

def summary_columns() -> list[str]:
    """Columns of results/summary.csv, in order, all from the registries of saesim.registry.metrics: the
    counts, the SAE measures' summary columns (SAE quality before the decoder metrics, the others
    after them; empty where unknown), each summary metric's value and :data:`saesim.registry.metrics.METRIC_STATS`,
    the coordinate spaces' and the per-latent columns."""
    metric_columns = [c for m in summary_metrics() for c in (m.name, *(f"{m.name}_{s}" for s in METRIC_STATS))]
    return [*SUMMARY_KEYS, *VARIANT_COLUMNS, *SUMMARY_COUNTS, *sae_summary_columns(quality=True), *metric_columns,
            *sae_summary_columns(quality=False), *space_columns(), *per_latent_summary_columns()]


#: columns of results/summary.csv for the metrics registered at import (see summary_columns)
SUMMARY_COLUMNS = summary_columns()


def _fourier_columns(df: pd.DataFrame, m: SaeMeasure, table: pd.DataFrame | None) -> pd.DataFrame:
    """A fourier.csv measure per variant: mean over real SAEs, random directions' mean
    (``_baseline``), the ratio, and over null SAEs ``_null``, ``_null_std``, ``_excess``; NaN
    where the experiment has no such table."""
    if table is not None and len(table):
        agg = real_rows(table).groupby(["hook", "variant"], sort=False).agg(
            **{m.name: (m.source_key, "mean"), m.column("baseline"): (m.baseline_key, "mean")}
        ).reset_index()
        agg[m.column("ratio")] = agg[m.name] / agg[m.column("baseline")]
        nulls = null_rows(table)
        if len(nulls):
            nagg = nulls.groupby(["hook", "variant"], sort=False)[m.source_key].agg(
                **{m.column("null"): "mean", m.column("null_std"): lambda v: v.std(ddof=0) if len(v) >= 2 else np.nan}
            ).reset_index()
            agg = agg.merge(nagg, on=["hook", "variant"], how="left")
            agg[m.column("excess")] = excess(agg[m.name], agg[m.column("null")])
        df = df.merge(agg, on=["hook", "variant"], how="left")
    for col in map(m.column, summary_stats(m)):
        if col not in df:
            df[col] = np.nan
    return df


def cross_experiment_summary(
    stability: dict[str, pd.DataFrame],
    fourier: dict[str, pd.DataFrame] | None = None,
    kinds: dict[str, str] | None = None,
    per_latent: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One row per SAE variant of every experiment (:func:`summary_columns`): the SAE measures
    with their companions, each summary metric with its random baseline, ratio and null, the
    coordinate spaces' and the per-latent columns.

    ``stability`` maps experiment -> its stability.csv; ``fourier`` maps experiment -> its
    fourier.csv (modular-addition experiments; the measures of source ``fourier``: Fourier
    overlap of decoder rows with the activations' key-frequency subspace, means over seeds).
    Every other column comes from stability.csv (the SAE measures' value is its mean over
    seeds); NaN where an experiment has none (ground truth: toy experiments; downstream loss:
    language models).
    """
    fourier = fourier or {}
    kinds = kinds or {}
    columns = summary_columns()
    frames = []
    experiment, kind = SUMMARY_KEYS
    for exp, st in stability.items():
        df = pd.DataFrame({experiment: exp, kind: kinds.get(exp, ""), **{c: st[c] for c in (*VARIANT_COLUMNS, N_SEEDS, N_PAIRS)}})
        for m, stats in SUMMARY_PARTS:
            if m.source == "fourier":
                continue
            for stat in stats:
                src = m.column(stat or "mean")
                df[m.column(stat)] = st[src] if src in st else np.nan
        for count in SUMMARY_COUNTS:  # the null models' counts: NaN in tables written before them
            if count not in df:
                df[count] = st[count] if count in st else np.nan
        for metric in (m.name for m in summary_metrics()):
            df[metric] = st[f"{metric}_mean"]
            for suffix in METRIC_STATS:
                col = f"{metric}_{suffix}"
                df[col] = st[col] if col in st else np.nan
        for col in space_columns():  # mean-removed / whitened coordinates (saesim.similarity.geometry)
            df[col] = st[col] if col in st else np.nan
        for m in sae_measures("fourier"):
            df = _fourier_columns(df, m, fourier.get(exp))
        df = _merge_per_latent(df, (per_latent or {}).get(exp))
        frames.append(df[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _merge_per_latent(df: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    """The per-latent columns (saesim.registry.metrics.per_latent_summary_columns) of one experiment's
    per_latent.csv, by hook and variant; NaN where it has none."""
    if table is not None and len(table):
        t = table.rename(columns=per_latent_thresholds())
        keep = ["hook", "variant", *(c for c in per_latent_summary_columns() if c in t)]
        df = df.merge(t[keep], on=["hook", "variant"], how="left")
    missing = [c for c in per_latent_summary_columns() if c not in df]
    # one concat, not a column at a time (pandas warns of a fragmented frame)
    return pd.concat([df, pd.DataFrame(np.nan, index=df.index, columns=missing)], axis=1) if missing else df


def _vs_random(value, baseline, value_ratio, lo=None, hi=None, distinct=None) -> str:
    """``value [lo, hi]* (random, ratio×)``: the interval where there is one, ``*`` where it
    excludes the null's."""
    if is_missing(value):
        return "–"
    return f"{value:.3f}{format_interval(lo, hi, '.3f')}{distinct_mark(distinct)} ({baseline:.3f}, {value_ratio:.1f}×)"


def _vs_null(null, std, value_excess, lo=None, hi=None) -> str:
    """``null [lo, hi] +- std (excess e)``; – where there is no trained null."""
    if is_missing(null):
        return "–"
    spread = "" if is_missing(std) else f" ± {std:.3f}"
    return f"{null:.3f}{format_interval(lo, hi, '.3f')}{spread} (excess {value_excess:+.2f})"


def _cell_groups() -> list[list[SaeMeasure]]:
    """The SAE measures shown in the summary's ground-truth column, by source, in registration order."""
    groups: dict[str, list[SaeMeasure]] = {}
    for m in SAE_MEASURES.values():
        if m.cell is not None:
            groups.setdefault(m.source, []).append(m)
    return list(groups.values())


def _measures_cell(measures: list[SaeMeasure], row) -> str:
    """``label value (random)`` of each measure and ``; null: label null``; with a ratio
    companion ``label value (random, ratio×)`` and ``; null null ± s.d. (excess e)``."""
    first = measures[0]
    if "ratio" in summary_stats(first):
        parts = [f"{m.cell[0]} " + _vs_random(row[m.name], row[m.column("baseline")], row[m.column("ratio")]) for m in measures]
        nulls = [_vs_null(row[m.column("null")], row[m.column("null_std")], row[m.column("excess")]) for m in measures]
        cell, null = "; ".join(parts), "; null " + "; ".join(nulls)
    else:
        cell = "; ".join(f"{m.cell[0]} {row[m.name]:{m.cell[1]}} ({row[m.column('baseline')]:{m.cell[1]}})" for m in measures)
        null = "; null: " + ", ".join(f"{m.cell[0]} {row[m.column('null')]:{m.cell[1]}}" for m in measures)
    return cell + ("" if is_missing(row.get(first.column("null"))) else null)


def _ground_truth_cell(row) -> str:
    """The first group of :func:`_cell_groups` the row has a value of; – where none."""
    for measures in _cell_groups():
        if not np.isnan(row[measures[0].name]):
            return _measures_cell(measures, row)
    return "–"


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as readable strings: each stability number as ``value (random, ratio×)``."""
    out = {"experiment": summary["experiment"], "hook": summary["hook"], "variant": summary["variant"]}
    for m in SAE_MEASURES.values():
        if m.display is not None:
            out[m.display[0]] = summary[m.name].map(lambda x, spec=m.display[1]: format_number(x, spec))
    for m in summary_metrics():
        out[f"{m.summary} [95% CI] (random, ratio)"] = [
            _vs_random(*cells) for cells in zip(*(summary[m.name if s == "" else f"{m.name}_{s}"]
                                                   for s in ("", "baseline", "ratio", "lo", "hi", "excess_distinct")))
        ]
    for m in SAE_MEASURES.values():
        if m.display_null is not None:
            out[m.display_null] = summary[m.column("null")].map(lambda x, spec=m.display[1]: format_number(x, spec))
    for m in summary_metrics():
        out[f"{m.summary_short or m.summary} null (excess)"] = [
            _vs_null(*cells) for cells in zip(*(summary[f"{m.name}_{s}"] for s in ("null", "null_std", "excess", "null_lo", "null_hi")))
        ]
    model = NULL_MODELS["randmodel"]  # where an experiment has a random-weights model null (model_null)
    for m in summary_metrics():
        mean, std, over = model.columns(m.name)
        if mean in summary and summary[mean].notna().any():
            out[f"{m.summary_short or m.summary} {model.label} (excess)"] = [
                _vs_null(n, s, e) for n, s, e in zip(summary[mean], summary[std], summary[over])
            ]
    out["ground truth (random; null)"] = [_ground_truth_cell(row) for _, row in summary.iterrows()]
    cells = [m for m in PER_LATENT_METRICS.values() if m.cell is not None]
    if cells and cells[0].name in summary and summary[cells[0].name].notna().any():  # per-latent stability (docs/per-latent.md)
        for m in cells:
            out[m.cell[0]] = [m.cell[1](row) for _, row in summary.iterrows()]
    return pd.DataFrame(out)


SUMMARY_LEGEND = (
    "Every SAE variant of every experiment: means over seeds (L0, explained variance, dead "
    "fraction, ground truth) and over seed pairs (stability). In brackets: the same number for "
    "random decoders of the same shape, and the ratio value / random. Ground truth: toy models, "
    "mean over true features of the best |cos| with any latent and the fraction recovered at "
    "|cos| >= 0.9; modular addition, mean Fourier overlap of decoder rows with the key-frequency "
    "subspace; – where unknown. Null: the same variant trained with the same recipe on Gaussian "
    "data with the store's mean and covariance (nothing sparse in it), mean ± s.d. over its seed "
    "pairs (over its SAEs for explained variance and ground truth; no s.d. from a single pair), and "
    "the excess over it, (value − null) / (1 − null): 0 means no more agreement than covariance "
    "alone gives, 1 perfect agreement. [95% CI]: a Student-t interval over seed pairs where a "
    "variant has >= 3 of them (rough: pairs sharing a seed are not independent), the null's where "
    "it has >= 3 null pairs; * where the interval excludes the null's (or the null's mean): the "
    "excess over the null is distinguishable from zero. Random model (where an experiment has one, config model_null): the same "
    "variant trained with the same recipe on the activations of the experiment's model with its weights "
    "re-initialised (token statistics kept, learned structure removed; Heap et al. 2026), mean ± s.d. over its "
    "seed pairs and the excess over it, the same way. Stable latents: the fraction of latents whose best decoder "
    "partner reaches |cos| >= t in every other seed (t: the 99th percentile of the null SAEs' "
    "best-match |cos|), mean over seeds, 95% t-interval over seeds where there are >= 3 seed pairs, "
    "* where that interval excludes the null's; EV share: the part of the explained variance those "
    "latents carry. Unstable subspace: mean squared cosine of the principal angles between two "
    "seeds' unstable-latent subspaces, beside random subspaces' r/d and the null's (docs/per-latent.md)."
)


def cross_summary_markdown(summary: pd.DataFrame) -> str:
    """results/summary.md: the summary as one Markdown table (pipes in headers escaped)."""
    table = summary_display(summary)
    table.columns = [c.replace("|", "\\|") for c in table.columns]
    return "# saesim summary\n\n" + SUMMARY_LEGEND.replace("|cos|", "\\|cos\\|") + "\n\n" + table.to_markdown(index=False) + "\n"


def cross_summary_html(summary: pd.DataFrame) -> str:
    """A self-contained HTML page of the summary, for the Snakemake report (which shows HTML inline)."""
    import html

    body = summary_display(summary).to_html(index=False, border=0, classes="summary")
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table.summary{border-collapse:collapse;font-size:13px}"
        "table.summary th,table.summary td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}"
        "table.summary th{background:#f3f3f3;position:sticky;top:0;white-space:normal;vertical-align:bottom}"
        "table.summary td:nth-child(-n+3),table.summary th:nth-child(-n+3){text-align:left}"
        "table.summary td:last-child,table.summary th:last-child{text-align:left;white-space:normal;min-width:14em}"
        "p{max-width:60em}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>saesim summary</title>"
        f"<style>{style}</style></head><body><h1>saesim summary</h1><p>{html.escape(SUMMARY_LEGEND)}</p>{body}</body></html>\n"
    )


UNIVERSALITY_SPACES = {"one_to_one": "SAE latents, one-to-one", "many_to_one": "SAE latents, many-to-one", "neurons": "model neurons"}


def universality_table(summary_files: Iterable[str]) -> pd.DataFrame:
    """Long table of a comparison: one row per (hook_a, hook_b, space, measure) with the
    value on the correlation pairing, the null mean/std over random pairings and the p-value,
    plus how many latents were paired and removed by each filter."""
    rows = []
    for path in summary_files:
        s = json.loads(Path(path).read_text())
        f = s["filters"]
        common = {
            "hook_a": s["hook_a"],
            "hook_b": s["hook_b"],
            "n_tokens": s["n_tokens"],
            "n_paired_one_to_one": s["one_to_one"]["n_paired"],
            "mean_corr_one_to_one": s["one_to_one"]["mean_corr"],
            "n_paired_many_to_one": s["many_to_one"]["n_paired"],
            "mean_corr_many_to_one": s["many_to_one"]["mean_corr"],
            "removed_rare_a": f["dead_or_rare"]["removed_a"],
            "removed_rare_b": f["dead_or_rare"]["removed_b"],
            "removed_junk_a": f["junk_top_tokens"]["removed_a"],
            "removed_junk_b": f["junk_top_tokens"]["removed_b"],
            "removed_below_threshold_a_to_b": f["below_threshold"]["removed_many_to_one_a_to_b"],
        }
        spaces = {**s["relational"], "neurons": {k: v for k, v in s["neurons"].items() if isinstance(v, dict)}}
        for space, measures in spaces.items():
            if "skipped" in measures:
                continue
            for measure, r in measures.items():
                rows.append({**common, "space": space, "measure": measure, **{k: r[k] for k in ("value", "null_mean", "null_std", "p_value", "n_null", "n_rows")}})
    return pd.DataFrame(rows)


def pwmcc_vs_gtmcc(stability: pd.DataFrame) -> dict:
    """Cross-seed PW-MCC (Hungarian mean matched |cos| between seeds) against GT-MCC
    (sae_lens.synthetic's ``mean_correlation_coefficient`` against the true features), one
    point per SAE variant, and their Pearson and Spearman correlation over variants (Song et
    al. 2025 argue the first predicts the second)."""
    from scipy import stats

    pw, gt, l0, true_l0 = PWMCC.name, GT_MCC.name, L0.name, TRUE_L0.name
    st = stability.dropna(subset=[f"{pw}_mean", f"{gt}_mean"])
    x, y = st[f"{pw}_mean"].to_numpy(float), st[f"{gt}_mean"].to_numpy(float)
    ok = len(st) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    return {
        "n_variants": int(len(st)),
        "pearson_r": float(stats.pearsonr(x, y)[0]) if ok else None,
        "spearman_rho": float(stats.spearmanr(x, y)[0]) if ok else None,
        "pwmcc_chance": float(st[f"{pw}_baseline"].mean()) if len(st) else None,
        "gtmcc_chance": float(st[f"{gt}_baseline"].mean()) if len(st) and f"{gt}_baseline" in st else None,
        true_l0: float(st[true_l0].mean()) if true_l0 in st and len(st) else None,
        "variants": [
            {"hook": r["hook"], "variant": r["variant"], l0: float(r[f"{l0}_mean"]), "pwmcc": float(r[f"{pw}_mean"]),
             "pwmcc_std": float(r[f"{pw}_std"]), "gtmcc": float(r[f"{gt}_mean"]), "gtmcc_std": float(r[f"{gt}_std"])}
            for _, r in st.iterrows()
        ],
    }
