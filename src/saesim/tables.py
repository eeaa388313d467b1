"""Tables of SAE quality and cross-seed stability, with random baselines beside every metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .geometry import flat_space_values
from .layout import ArtifactId, identity_in, parse, sae_key_identity
from .metrics import (COORDINATE_SPACES, TABLE_METRICS, TableMetricView, per_latent_summary_columns, space_columns,
                      summary_metrics, table_metric)

#: stability metrics, as columns of pairs.csv (name -> how to read it from a pair result), and
#: their labels: views of the registry saesim.metrics.TABLE_METRICS
STABILITY_METRICS = TableMetricView(lambda m: m.value)
METRIC_LABELS = TableMetricView(lambda m: m.label)

#: downstream loss of language-model SAEs (saesim.downstream), per SAE in saes.csv, means in stability.csv
DOWNSTREAM_COLUMNS = ("ce_loss_recovered", "kl_div", "ce_loss_delta", "ce_clean", "ce_zero")

def _scalar(x):
    """Baselines may store ``{"mean": .., "std": ..}`` or a plain number."""
    return x["mean"] if isinstance(x, dict) and "mean" in x else x


def downstream_rows(downstream_files: Iterable[str]) -> pd.DataFrame:
    """One row per SAE of the ``downstream.json`` files (each SAE's identity, else its key ``hook/variant/seed<s>``)."""
    rows = []
    for path in downstream_files:
        for key, r in json.loads(Path(path).read_text())["saes"].items():
            sae = ArtifactId.from_dict(r["identity"]) if "identity" in r else sae_key_identity(key, "")
            rows.append({"hook": sae.hook, "variant": sae.variant, "seed": int(sae.seed),
                         **{c: r[c] for c in DOWNSTREAM_COLUMNS}})
    return pd.DataFrame(rows, columns=["hook", "variant", "seed", *DOWNSTREAM_COLUMNS])


def sae_table(sae_dirs: Iterable[str], ground_truth_files: Iterable[str] = (), downstream_files: Iterable[str] = ()) -> pd.DataFrame:
    """One row per trained SAE: its quality metrics, (toy) ground-truth recovery and
    (language models) downstream loss."""
    rows = []
    for path in sae_dirs:
        m = json.loads((Path(path) / "metrics.json").read_text())
        key = identity_in(m, "sae", path)
        rows.append(
            {
                "hook": key.hook,
                "variant": key.variant,
                "seed": int(key.seed),
                "null": key.null,
                "architecture": m["architecture"],
                "width": m["width"],
                "sparsity_key": m["sparsity_key"],
                "sparsity": m["sparsity"],
                "l0": m["l0"],
                "explained_variance": m["explained_variance"],
                "mse": m["mse"],
                "dead_fraction": m["dead_fraction"],
                "training_seconds": m["training_seconds"],
            }
        )
    df = pd.DataFrame(rows)
    gt_rows = []
    for path in ground_truth_files:
        g = json.loads(Path(path).read_text())
        key = identity_in(g, "ground_truth", path)
        gt_rows.append(
            {
                "hook": key.hook,
                "variant": key.variant,
                "seed": int(key.seed),
                "null": key.null,
                "gt_mean_max_cos": g["gt_mean_max_cos"],
                "gt_frac_recovered": g["gt_frac_recovered"],
                "gt_mean_max_cos_baseline": g["baseline"]["gt_mean_max_cos"],
                "gt_frac_recovered_baseline": g["baseline"]["gt_frac_recovered"],
                **_library_gt_columns(g),
            }
        )
    if gt_rows:
        df = df.merge(pd.DataFrame(gt_rows), on=["hook", "variant", "seed", "null"], how="left")
    downstream = downstream_rows(downstream_files)
    if len(downstream):  # real SAEs only
        df = df.merge(downstream.assign(null=False), on=["hook", "variant", "seed", "null"], how="left")
    return df.sort_values(["null", "hook", "architecture", "width", "sparsity", "seed"]).reset_index(drop=True)


#: sae_lens.synthetic's ground-truth metrics in a ground_truth JSON (absent in older ones), with their chance level
LIBRARY_GT_METRICS = ("gt_mcc", "gt_uniqueness", "gt_f1", "gt_precision", "gt_recall")


def _library_gt_columns(g: dict) -> dict:
    out = {m: g.get(m, np.nan) for m in LIBRARY_GT_METRICS}
    out.update({f"{m}_baseline": g["baseline"][m] for m in ("gt_mcc", "gt_uniqueness") if m in g["baseline"]})
    out["true_l0"] = g.get("true_l0", np.nan)
    return out


def pair_table(pair_files: Iterable[str], saes: pd.DataFrame) -> pd.DataFrame:
    """One row per seed pair of one variant, with every stability metric."""
    rows = []
    for path in pair_files:
        r = json.loads(Path(path).read_text())
        key = identity_in(r, "pair", path)
        row = {"hook": key.hook, "variant": key.variant, "seed_a": int(key.seeds[0]), "seed_b": int(key.seeds[1]), "null": key.null}
        row.update({name: float(get(r)) for name, get in STABILITY_METRICS.items()})
        row["mmcs_a_to_b"] = r["mmcs_a_to_b"]
        row["mmcs_b_to_a"] = r["mmcs_b_to_a"]
        row["shared_latents_frac"] = r.get("shared_latents_frac")
        row.update(flat_space_values(r, TABLE_METRICS.values()))  # mean-removed / whitened (saesim.geometry)
        rows.append(row)
    df = pd.DataFrame(rows)
    info = saes.drop_duplicates(["hook", "variant"])[["hook", "variant", "architecture", "width", "sparsity_key", "sparsity"]]
    return df.merge(info, on=["hook", "variant"], how="left").sort_values(["null", "hook", "architecture", "width", "sparsity", "seed_a", "seed_b"]).reset_index(drop=True)


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


def real_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of real SAEs / pairs of a table that may also hold the trained null's."""
    return df[~df["null"].astype(bool)] if "null" in df else df


def null_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of null SAEs / pairs (trained on the Gaussian twin of the store)."""
    return df[df["null"].astype(bool)] if "null" in df else df.iloc[0:0]


def excess_over_null(value, null):
    """``(value - null) / (1 - null)``: 0 at the trained null, 1 at perfect agreement (NaN without a null)."""
    value = np.asarray(value, dtype=float)
    null = np.asarray(null, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(null < 1, (value - null) / (1 - null), np.nan)
    return out.item() if out.ndim == 0 else out


def _add_null(row: dict, name: str, value: float, null_values) -> None:
    """``<name>_null`` (mean over null SAEs or null pairs), ``_null_std`` (NaN below two) and ``_excess``."""
    v = pd.Series(null_values, dtype=float).dropna()
    null = v.mean() if len(v) else np.nan
    row[f"{name}_null"] = null
    row[f"{name}_null_std"] = v.std(ddof=0) if len(v) >= 2 else np.nan
    row[f"{name}_excess"] = excess_over_null(value, null)


def stability_table(saes: pd.DataFrame, pairs: pd.DataFrame, baselines: dict) -> pd.DataFrame:
    """One row per (hook, variant): SAE quality, each stability metric's spread over seed pairs,
    its random baseline and the ratio value / baseline.

    Where ``saes`` / ``pairs`` also hold null SAEs and pairs (column ``null``: trained on the
    Gaussian twin of the store), each metric also gets ``<metric>_null`` (mean over null pairs;
    for explained variance, L0 and ground truth: over null SAEs), ``<metric>_null_std`` and
    ``<metric>_excess`` = (value - null) / (1 - null); NaN where there is no null.
    """
    nulls, null_pairs = null_rows(saes), null_rows(pairs)
    saes, pairs = real_rows(saes), real_rows(pairs)
    rows = []
    for (hook, variant), group in saes.groupby(["hook", "variant"], sort=False):
        first = group.iloc[0]
        row = {
            "hook": hook,
            "variant": variant,
            "architecture": first["architecture"],
            "width": int(first["width"]),
            "sparsity_key": first["sparsity_key"],
            "sparsity": first["sparsity"],
            "n_seeds": len(group),
            "l0_mean": group["l0"].mean(),
            "l0_std": group["l0"].std(ddof=0),
            "explained_variance_mean": group["explained_variance"].mean(),
            "dead_fraction_mean": group["dead_fraction"].mean(),
        }
        p = pairs[(pairs["hook"] == hook) & (pairs["variant"] == variant)]
        row["n_pairs"] = len(p)
        base = baselines[(hook, int(first["width"]))]
        for metric in STABILITY_METRICS:
            values = p[metric].to_numpy(dtype=float)
            b = baseline_value(base, metric)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=0)
            row[f"{metric}_min"] = values.min()
            row[f"{metric}_max"] = values.max()
            row[f"{metric}_baseline"] = b
            row[f"{metric}_baseline_std"] = baseline_std(base, metric)
            row[f"{metric}_ratio"] = values.mean() / b if b > 0 else np.nan
        for col in ("gt_mean_max_cos", "gt_frac_recovered"):
            if col in group:
                row[f"{col}_mean"] = group[col].mean()
                row[f"{col}_baseline"] = group[f"{col}_baseline"].mean()
        for col in DOWNSTREAM_COLUMNS:
            if col in group:
                row[f"{col}_mean"] = group[col].mean()
        # the trained null: the same variant on the Gaussian twin of the store
        ng = nulls[(nulls["hook"] == hook) & (nulls["variant"] == variant)]
        npairs = null_pairs[(null_pairs["hook"] == hook) & (null_pairs["variant"] == variant)]
        row["n_null_seeds"] = len(ng)
        row["n_null_pairs"] = len(npairs)
        row["l0_null"] = ng["l0"].mean() if len(ng) else np.nan
        _add_null(row, "explained_variance", row["explained_variance_mean"], ng["explained_variance"] if len(ng) else [])
        for metric in STABILITY_METRICS:
            _add_null(row, metric, row[f"{metric}_mean"], npairs[metric] if len(npairs) else [])
        for col in ("gt_mean_max_cos", "gt_frac_recovered"):
            if col in group:
                _add_null(row, col, row[f"{col}_mean"], ng[col] if len(ng) and col in ng else [])
        for col in LIBRARY_GT_METRICS:
            if col in group:
                row[f"{col}_mean"] = group[col].mean()
                row[f"{col}_std"] = group[col].std(ddof=0)
                if f"{col}_baseline" in group:
                    row[f"{col}_baseline"] = group[f"{col}_baseline"].mean()
        if "true_l0" in group:
            row["true_l0"] = group["true_l0"].mean()
        _add_space_columns(row, p, npairs, base)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["hook", "architecture", "width", "sparsity"]).reset_index(drop=True)


def _add_space_columns(row: dict, pairs: pd.DataFrame, null_pairs: pd.DataFrame, base: dict) -> None:
    """Each table metric in each non-raw coordinate space (saesim.geometry): mean and spread over
    seed pairs, the isotropic random baseline in that space (``base["spaces"]``), the ratio, and
    the trained null's pairs measured the same way (``_null``, ``_null_std``, ``_excess``).
    NaN where the pairs or baselines were computed without the spaces."""
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
            row[f"{col}_ratio"] = mean / b if b > 0 else np.nan
            _add_null(row, col, mean, null_pairs[col] if len(null_pairs) and col in null_pairs else [])


def summary_markdown(stability: pd.DataFrame, true_l0: float | None = None) -> str:
    """A readable Markdown table: every variant, its quality, and stability vs baseline."""
    cols = {
        "hook": "hook",
        "variant": "variant",
        "l0_mean": "L0",
        "explained_variance_mean": "expl. var.",
        "dead_fraction_mean": "dead",
        **{f"{m.name}_{stat}": m.markdown_label(stat) for m in TABLE_METRICS.values() for stat in m.markdown},
    }
    if "gt_mean_max_cos_mean" in stability:
        cols.update({"gt_mean_max_cos_mean": "GT recovery (mean max cos)", "gt_frac_recovered_mean": "GT recovered >= 0.9", "gt_mean_max_cos_baseline": "GT random"})
    null_cols = {
        "explained_variance_null": "expl. var. null",
        **{f"{m.name}_{stat}": f"{m.short} {stat}" for m in summary_metrics() for stat in ("null", "excess")},
        "gt_mean_max_cos_null": "GT null",
    }
    cols.update({k: v for k, v in null_cols.items() if k in stability})
    if "gt_mcc_mean" in stability:
        cols.update({"gt_mcc_mean": "GT-MCC", "gt_mcc_baseline": "GT-MCC random", "gt_uniqueness_mean": "uniqueness", "gt_f1_mean": "F1"})
    table = stability[list(cols)].rename(columns=cols)
    header = (
        "Cross-seed stability per SAE variant (means over seeds / seed pairs; 'random' = same metric on random decoders "
        "of the same shape; 'null' = SAEs of the same variant trained on Gaussian data with the store's mean and "
        "covariance, mean over their seed pairs; 'excess' = (value - null) / (1 - null)).\n\n"
    )
    if "true_l0" in stability and stability["true_l0"].notna().any():
        true_l0 = float(stability["true_l0"].mean())  # measured in the store (hierarchies lower it)
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

#: per-variant statistics of each summary metric (saesim.metrics.summary_metrics) in the summary, in order
_SUMMARY_METRIC_STATS = ("std", "baseline", "ratio", "null", "null_std", "excess")
_SUMMARY_BEFORE_METRICS = [
    "experiment", "kind", "hook", "variant", "architecture", "width", "sparsity_key", "sparsity",
    "n_seeds", "n_pairs", "n_null_pairs", "l0", "l0_null",
    "explained_variance", "explained_variance_null", "explained_variance_null_std", "explained_variance_excess", "dead_fraction",
]
_SUMMARY_AFTER_METRICS = [
    "gt_mean_max_cos", "gt_mean_max_cos_baseline", "gt_mean_max_cos_null", "gt_mean_max_cos_null_std", "gt_mean_max_cos_excess",
    "gt_frac_recovered", "gt_frac_recovered_baseline", "gt_frac_recovered_null", "gt_frac_recovered_null_std", "gt_frac_recovered_excess",
    "fourier_overlap", "fourier_overlap_baseline", "fourier_overlap_ratio",
    "ce_loss_recovered", "kl_div", "ce_loss_delta",
    "fourier_overlap_null", "fourier_overlap_null_std", "fourier_overlap_excess",
    "gt_mcc", "gt_mcc_baseline", "gt_uniqueness", "gt_f1",
]


def summary_columns() -> list[str]:
    """Columns of results/summary.csv, in order (ground-truth columns are empty where unknown):
    each summary metric's value and :data:`_SUMMARY_METRIC_STATS` after the quality columns."""
    metric_columns = [c for m in summary_metrics() for c in (m.name, *(f"{m.name}_{s}" for s in _SUMMARY_METRIC_STATS))]
    return [*_SUMMARY_BEFORE_METRICS, *metric_columns, *_SUMMARY_AFTER_METRICS, *space_columns(),
            *per_latent_summary_columns()]


#: columns of results/summary.csv for the metrics registered at import (see summary_columns)
SUMMARY_COLUMNS = summary_columns()


def _summary_null_columns() -> dict[str, str]:
    """Per-variant columns of stability.csv that the summary copies under its own name (NaN where absent)."""
    return {
        "n_null_pairs": "n_null_pairs",
        "l0_null": "l0_null",
        **{f"{m}_{suffix}": f"{m}_{suffix}"
           for m in ("explained_variance", *(m.name for m in summary_metrics()), "gt_mean_max_cos", "gt_frac_recovered")
           for suffix in ("null", "null_std", "excess")},
    }


def cross_experiment_summary(
    stability: dict[str, pd.DataFrame],
    fourier: dict[str, pd.DataFrame] | None = None,
    kinds: dict[str, str] | None = None,
    per_latent: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One row per SAE variant of every experiment: quality, both stability metrics with their
    random baseline and ratio, and ground-truth recovery where it is known.

    ``stability`` maps experiment -> its stability.csv; ``fourier`` maps experiment -> its
    fourier.csv (modular-addition experiments). Toy experiments fill the ``gt_*`` columns
    (mean over true features of the best |cos| with a latent, fraction recovered at
    |cos| >= 0.9, and both for random decoders); modular ones fill ``fourier_overlap*`` (mean
    Fourier overlap of decoder rows with the activations' key-frequency subspace, the
    random-direction value and the ratio). Both are means over seeds.
    """
    fourier = fourier or {}
    kinds = kinds or {}
    columns = summary_columns()
    frames = []
    for exp, st in stability.items():
        df = pd.DataFrame({
            "experiment": exp,
            "kind": kinds.get(exp, ""),
            "hook": st["hook"],
            "variant": st["variant"],
            "architecture": st["architecture"],
            "width": st["width"],
            "sparsity_key": st["sparsity_key"],
            "sparsity": st["sparsity"],
            "n_seeds": st["n_seeds"],
            "n_pairs": st["n_pairs"],
            "l0": st["l0_mean"],
            "explained_variance": st["explained_variance_mean"],
            "dead_fraction": st["dead_fraction_mean"],
        })
        for metric in (m.name for m in summary_metrics()):
            df[metric] = st[f"{metric}_mean"]
            for suffix in ("std", "baseline", "ratio"):
                df[f"{metric}_{suffix}"] = st[f"{metric}_{suffix}"]
        for col in ("gt_mean_max_cos", "gt_frac_recovered"):
            df[col] = st[f"{col}_mean"] if f"{col}_mean" in st else np.nan
            df[f"{col}_baseline"] = st[f"{col}_baseline"] if f"{col}_baseline" in st else np.nan
        for col in ("ce_loss_recovered", "kl_div", "ce_loss_delta"):
            df[col] = st[f"{col}_mean"] if f"{col}_mean" in st else np.nan
        for src, dst in _summary_null_columns().items():
            df[dst] = st[src] if src in st else np.nan
        for col in space_columns():  # mean-removed / whitened coordinates (saesim.geometry)
            df[col] = st[col] if col in st else np.nan
        for col in ("gt_mcc", "gt_uniqueness", "gt_f1"):  # sae_lens.synthetic's metrics
            df[col] = st[f"{col}_mean"] if f"{col}_mean" in st else np.nan
        df["gt_mcc_baseline"] = st["gt_mcc_baseline"] if "gt_mcc_baseline" in st else np.nan
        f = fourier.get(exp)
        if f is not None and len(f):
            agg = real_rows(f).groupby(["hook", "variant"], sort=False).agg(
                fourier_overlap=("act_mean_overlap", "mean"), fourier_overlap_baseline=("act_random_baseline", "mean")
            ).reset_index()
            agg["fourier_overlap_ratio"] = agg["fourier_overlap"] / agg["fourier_overlap_baseline"]
            nf = null_rows(f)
            if len(nf):
                nagg = nf.groupby(["hook", "variant"], sort=False)["act_mean_overlap"].agg(
                    fourier_overlap_null="mean", fourier_overlap_null_std=lambda v: v.std(ddof=0) if len(v) >= 2 else np.nan
                ).reset_index()
                agg = agg.merge(nagg, on=["hook", "variant"], how="left")
                agg["fourier_overlap_excess"] = excess_over_null(agg["fourier_overlap"], agg["fourier_overlap_null"])
            df = df.merge(agg, on=["hook", "variant"], how="left")
        for col in ("fourier_overlap", "fourier_overlap_baseline", "fourier_overlap_ratio", "fourier_overlap_null", "fourier_overlap_null_std", "fourier_overlap_excess"):
            if col not in df:
                df[col] = np.nan
        df = _merge_per_latent(df, (per_latent or {}).get(exp))
        frames.append(df[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _merge_per_latent(df: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    """The per-latent columns (saesim.metrics.per_latent_summary_columns) of one experiment's
    per_latent.csv, by hook and variant; NaN where it has none."""
    cols = [c for c in per_latent_summary_columns() if c != "per_latent_threshold"]
    if table is None or not len(table):
        for c in per_latent_summary_columns():
            df[c] = np.nan
        return df
    t = table.rename(columns={"threshold": "per_latent_threshold"})
    keep = ["hook", "variant", *(c for c in per_latent_summary_columns() if c in t)]
    df = df.merge(t[keep], on=["hook", "variant"], how="left")
    for c in cols:
        if c not in df:
            df[c] = np.nan
    return df


def _interval(lo, hi) -> str:
    return "" if _isnan(lo) or _isnan(hi) else f" [{lo:.2f}, {hi:.2f}]"


def _stable_cell(row) -> str:
    """``frac [lo, hi] (null n; EV share e, null e0)``, ``*`` where the excess over the null is
    distinguishable from zero; – without per-latent results."""
    if _isnan(row.get("frac_stable")):
        return "–"
    cell = f"{row['frac_stable']:.2f}{_interval(row['frac_stable_lo'], row['frac_stable_hi'])}"
    if row.get("frac_stable_excess_distinct") == 1.0:
        cell += "*"
    cell += f" (null {_fmt(row['frac_stable_null'], '.2f')}; EV share {_fmt(row['ev_share_stable'], '.2f')}"
    cell += f", null {_fmt(row['ev_share_stable_null'], '.2f')})"
    return cell


def _subspace_cell(row) -> str:
    if _isnan(row.get("unstable_subspace")):
        return "–"
    return (f"{row['unstable_subspace']:.2f}{_interval(row['unstable_subspace_lo'], row['unstable_subspace_hi'])}"
            f" (chance {_fmt(row['unstable_subspace_chance'], '.2f')}; null {_fmt(row['unstable_subspace_null'], '.2f')})")


def _fmt(x, spec: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def _vs_random(value, baseline, ratio) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.3f} ({baseline:.3f}, {ratio:.1f}×)"


def _isnan(x) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


def _vs_null(null, std, excess) -> str:
    """``null +- std (excess e)``; – where there is no trained null."""
    if _isnan(null):
        return "–"
    spread = "" if _isnan(std) else f" ± {std:.3f}"
    return f"{null:.3f}{spread} (excess {excess:+.2f})"


def _ground_truth_cell(row) -> str:
    if not np.isnan(row["gt_mean_max_cos"]):
        cell = (
            f"best cos {row['gt_mean_max_cos']:.3f} ({row['gt_mean_max_cos_baseline']:.3f}); "
            f"recovered {row['gt_frac_recovered']:.2f} ({row['gt_frac_recovered_baseline']:.2f})"
        )
        if not _isnan(row.get("gt_mean_max_cos_null")):
            cell += f"; null: best cos {row['gt_mean_max_cos_null']:.3f}, recovered {row['gt_frac_recovered_null']:.2f}"
        return cell
    if not np.isnan(row["fourier_overlap"]):
        cell = "Fourier overlap " + _vs_random(row["fourier_overlap"], row["fourier_overlap_baseline"], row["fourier_overlap_ratio"])
        if not _isnan(row.get("fourier_overlap_null")):
            cell += "; null " + _vs_null(row["fourier_overlap_null"], row["fourier_overlap_null_std"], row["fourier_overlap_excess"])
        return cell
    return "–"


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as readable strings: each stability number as ``value (random, ratio×)``."""
    out = {
        "experiment": summary["experiment"],
        "hook": summary["hook"],
        "variant": summary["variant"],
        "L0": summary["l0"].map(lambda x: _fmt(x, ".1f")),
        "expl. var.": summary["explained_variance"].map(_fmt),
        "dead": summary["dead_fraction"].map(lambda x: _fmt(x, ".2f")),
    }
    for m in summary_metrics():
        out[f"{m.summary} (random, ratio)"] = [
            _vs_random(v, b, r) for v, b, r in zip(summary[m.name], summary[f"{m.name}_baseline"], summary[f"{m.name}_ratio"])
        ]
    out["expl. var. null"] = summary["explained_variance_null"].map(_fmt)
    for m in summary_metrics():
        out[f"{m.summary_short or m.summary} null (excess)"] = [
            _vs_null(n, s, e) for n, s, e in zip(summary[f"{m.name}_null"], summary[f"{m.name}_null_std"], summary[f"{m.name}_excess"])
        ]
    out["ground truth (random; null)"] = [_ground_truth_cell(row) for _, row in summary.iterrows()]
    if "frac_stable" in summary and summary["frac_stable"].notna().any():  # per-latent stability (docs/per-latent.md)
        out["stable latents [95% CI] (null; EV share, null)"] = [_stable_cell(row) for _, row in summary.iterrows()]
        out["unstable subspace [95% CI] (chance; null)"] = [_subspace_cell(row) for _, row in summary.iterrows()]
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
    "alone gives, 1 perfect agreement. Stable latents: the fraction of latents whose best decoder "
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

    st = stability.dropna(subset=["hungarian_mean_cos_mean", "gt_mcc_mean"])
    x, y = st["hungarian_mean_cos_mean"].to_numpy(float), st["gt_mcc_mean"].to_numpy(float)
    ok = len(st) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
    return {
        "n_variants": int(len(st)),
        "pearson_r": float(stats.pearsonr(x, y)[0]) if ok else None,
        "spearman_rho": float(stats.spearmanr(x, y)[0]) if ok else None,
        "pwmcc_chance": float(st["hungarian_mean_cos_baseline"].mean()) if len(st) else None,
        "gtmcc_chance": float(st["gt_mcc_baseline"].mean()) if len(st) and "gt_mcc_baseline" in st else None,
        "true_l0": float(st["true_l0"].mean()) if "true_l0" in st and len(st) else None,
        "variants": [
            {"hook": r.hook, "variant": r.variant, "l0": float(r.l0_mean), "pwmcc": float(r.hungarian_mean_cos_mean),
             "pwmcc_std": float(r.hungarian_mean_cos_std), "gtmcc": float(r.gt_mcc_mean), "gtmcc_std": float(r.gt_mcc_std)}
            for r in st.itertuples()
        ],
    }
