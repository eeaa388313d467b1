"""Figures of saesim.similarity.geometry: how much of each variant's agreement survives the change of coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from saesim.registry.metrics import COORDINATE_SPACES, TABLE_METRICS
from saesim.report.figures import paper_style, plt, sns

#: the metrics drawn, one row of panels each
SPACE_FIGURE_METRICS = ("mmcs", "hungarian_mean_cos")


def chance_corrected(value, chance):
    """``(value - chance) / (1 - chance)``: 0 at the chance level, 1 at perfect agreement."""
    value = np.asarray(value, dtype=float)
    chance = np.asarray(chance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(chance < 1, (value - chance) / (1 - chance), np.nan)


def space_long_table(summary: pd.DataFrame, metrics=SPACE_FIGURE_METRICS) -> pd.DataFrame:
    """One row per (variant, metric, space): the value, its random baseline and trained null in that
    space, the excess over each, and ``survives``: the excess over the null in that space divided by
    the raw one (the share of the raw above-null agreement left)."""
    rows = []
    for _, r in summary.iterrows():
        label = f"{r['experiment']} · {r['hook']} · {r['variant']}"
        for m in metrics:
            raw_excess = r.get(f"{m}_excess", np.nan)
            for space in COORDINATE_SPACES.values():
                col = space.column(m)
                value = r.get(col, np.nan)
                base = r.get(f"{col}_baseline", np.nan)
                null = r.get(f"{col}_null", np.nan)
                excess_null = chance_corrected(value, null).item()
                rows.append({
                    "variant": label, "metric": m, "space": space.label, "value": value, "baseline": base, "null": null,
                    "excess_random": chance_corrected(value, base).item(), "excess_null": excess_null,
                    "survives": excess_null / raw_excess if np.isfinite(raw_excess) and raw_excess > 0 else np.nan,
                })
    return pd.DataFrame(rows)


def coordinate_spaces_figure(summary: pd.DataFrame, title: str = "Agreement per coordinate system"):
    """Rows: metrics; columns: excess over isotropic random decoders in the space, excess over the
    trained null measured the same way. One bar per variant and space (raw, mean removed, whitened)."""
    paper_style()
    long = space_long_table(summary)
    variants = list(dict.fromkeys(long["variant"]))
    palette = dict(zip((s.label for s in COORDINATE_SPACES.values()), ("#4C72B0", "#DD8452", "#55A868")))
    height = max(3.0, 0.32 * len(variants) + 1.5)
    fig, axes = plt.subplots(len(SPACE_FIGURE_METRICS), 2, figsize=(13, height * len(SPACE_FIGURE_METRICS)), squeeze=False, sharey=True)
    for i, m in enumerate(SPACE_FIGURE_METRICS):
        sub = long[long["metric"] == m]
        for j, (col, what) in enumerate((("excess_random", "over random decoders"), ("excess_null", "over trained null"))):
            ax = axes[i, j]
            sns.barplot(data=sub, y="variant", x=col, hue="space", order=variants, hue_order=list(palette),
                        palette=palette, orient="h", ax=ax, errorbar=None)
            ax.axvline(0, color="0.3", lw=0.8)
            ax.set_xlim(min(-0.1, np.nanmin(sub[col].to_numpy(dtype=float), initial=0) - 0.05), 1.0)
            ax.set_xlabel(f"{TABLE_METRICS[m].label}:\nexcess {what}")  # two lines: side by side they collided
            ax.set_ylabel("")
            if (i, j) != (0, 1):
                legend = ax.get_legend()
                if legend is not None:
                    legend.remove()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
