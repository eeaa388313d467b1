"""Figures for papers: seaborn/matplotlib, baselines always drawn, one colour per architecture."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from saesim.saes.architectures import ARCHITECTURES  # noqa: E402
from saesim.workflow.layout import natural_key  # noqa: E402
from saesim.report.tables import real_rows  # noqa: E402
from saesim.registry.metrics import RELATIONAL_MEASURES, TABLE_METRICS  # noqa: E402

# from the architecture registry (saesim.saes.architectures)
ARCHITECTURE_COLORS = {a.name: a.color for a in ARCHITECTURES.values()}
ARCHITECTURE_LABELS = {a.name: a.label for a in ARCHITECTURES.values()}
BASELINE_COLOR = "0.45"


def paper_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.25)
    plt.rcParams.update({"figure.dpi": 150, "savefig.bbox": "tight", "pdf.fonttype": 42, "axes.titleweight": "bold"})


def save_figure(fig, pdf_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Save as PDF and PNG (each complete or absent: written under a temporary name, then renamed)."""
    for path, fmt in ((Path(pdf_path), "pdf"), (Path(png_path), "png")):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.partial-{os.getpid()}{path.suffix}")
        # fixed metadata so the same data gives the same bytes
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        fig.savefig(tmp, format=fmt, dpi=200 if fmt == "png" else None, metadata=metadata)
        os.replace(tmp, path)
    plt.close(fig)


def _arch_label(arch: str) -> str:
    return ARCHITECTURE_LABELS.get(arch, arch)


def _series_label(arch: str, width: int, widths: list[int]) -> str:
    return _arch_label(arch) if len(widths) == 1 else f"{_arch_label(arch)}, width {width}"


#: y limits of panels whose values lie in [0, 1]: a baseline at 0 stays visible above the axis
UNIT_YLIM = (-0.04, 1.04)
#: line styles of the random baselines of different widths in one panel
BASELINE_STYLES = ["--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1))]


def _ordered_hooks(hooks) -> list[str]:
    return sorted(dict.fromkeys(hooks), key=natural_key)


def _baseline(ax, value: float, std: float | None = None, label: str = "random decoders", style="--"):
    """Draw a random baseline: a grey line at its mean and, where its spread over random draws
    is known, a band of +- 2 s.d. Returns ``(legend handle, label)``."""
    from matplotlib.patches import Patch

    line = ax.axhline(value, color=BASELINE_COLOR, ls=style, lw=1.3)
    if std is not None and np.isfinite(std) and std > 0:
        # metrics with a band lie in [0, 1]; so does the band
        ax.axhspan(max(value - 2 * std, 0.0), min(value + 2 * std, 1.0), color=BASELINE_COLOR, alpha=0.2, lw=0)
        return (Patch(color=BASELINE_COLOR, alpha=0.2, lw=0), line), label
    return line, label


#: legend label of the trained null (SAEs of the same variant on the store's Gaussian twin)
NULL_LABEL = "trained null (Gaussian, same mean/cov), ± 2 s.d."
NULL_STYLE = {"ls": ":", "marker": "x", "lw": 1.4, "ms": 6}


def _null_handle():
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return (Patch(color="0.2", alpha=0.15, lw=0), Line2D([], [], color="0.2", **NULL_STYLE))


def _null_band(ax, x, null, std, color, transform=None) -> bool:
    """The trained null of a series: its mean over null seed pairs as a dotted line with x markers,
    and +- 2 s.d. over null pairs as a band in the series colour (no band from a single pair).
    Returns whether anything was drawn."""
    x, null, std = (np.asarray(v, dtype=float) for v in (x, null, std))
    ok = np.isfinite(x) & np.isfinite(null)
    if not ok.any():
        return False
    order = np.argsort(x[ok])
    x, null, std = x[ok][order], null[ok][order], std[ok][order]
    kw = {"transform": transform} if transform is not None else {}
    ax.plot(x, null, color=color, **NULL_STYLE, **kw)
    if np.isfinite(std).any():
        s2 = np.where(np.isfinite(std), 2 * std, 0.0)
        ax.fill_between(x, np.clip(null - s2, 0, 1), np.clip(null + s2, 0, 1), color=color, alpha=0.15, lw=0, **kw)
    return True


def _add_entry(entries: dict, label: str, handle) -> None:
    """Keep one legend entry per label, preferring a band-and-line handle over a bare line."""
    if label not in entries or isinstance(handle, tuple):
        entries[label] = handle


def _top_legend(fig, axes, extra: dict | None = None, title: str | None = None, n_rows: int = 1,
                ncol: int | None = None) -> None:
    """Lay out the panels, then one legend above them all (architectures first, then
    baselines and reference lines) and the title above the legend."""
    entries = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    for label, handle in (extra or {}).items():
        entries.setdefault(label, handle)
    arch_labels = set(ARCHITECTURE_LABELS.values())
    labels = sorted(entries, key=lambda lab: 0 if lab.split(",")[0] in arch_labels else 1)
    if ncol is None:
        ncol = max(1, len(labels) if len(labels) <= 4 else int(np.ceil(len(labels) / 2)))
    fig.tight_layout()
    fig.legend([entries[lab] for lab in labels], labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, frameon=False)
    if title:
        legend_rows = int(np.ceil(len(labels) / ncol))
        fig.suptitle(title, y=1.0 + (0.02 + 0.075 * legend_rows) / n_rows, va="bottom")


#: variant-id suffix of frozen-dictionary variants (saesim.workflow.config.expand_variants)
FROZEN_TAG = "-frozen"


def stability_vs_l0(stability: pd.DataFrame, pairs: pd.DataFrame, true_l0: float | None = None, title: str | None = None):
    """Cross-seed stability against L0: one panel per metric (columns) and hook (rows).

    Points are the mean over seed pairs at each variant's measured L0 (mean over
    seeds); error bars span the min-max over seed pairs; faint dots are the single
    pairs. The dashed grey line is the same metric on random decoders of the same
    shape, the grey band +- 2 s.d. over random draws; dotted lines with x markers in
    the series colour are the trained null (the same variants trained on Gaussian data
    with the store's mean and covariance, mean over null seed pairs, at the null's own
    L0), with a +- 2 s.d. band where there are at least two null pairs; the dotted
    vertical black line is the true L0 where known. Series of different widths are drawn a few points apart
    along x (a display offset, not a data change) so that equal L0s stay visible.
    """
    paper_style()
    pairs = real_rows(pairs)
    # frozen-dictionary variants (freeze: decoder) are a chance level, not a point of the L0 sweep
    stability = stability[~stability["variant"].astype(str).str.contains(FROZEN_TAG, regex=False)]
    hooks = _ordered_hooks(stability["hook"])
    metrics = list(TABLE_METRICS)
    fig, axes = plt.subplots(len(hooks), len(metrics), figsize=(4.6 * len(metrics), 3.6 * len(hooks)), squeeze=False)
    l0_of = stability.set_index(["hook", "variant"])["l0_mean"]
    extra = {}
    # labels, markers and baseline styles by width over the whole table, so that a
    # width trained at some hooks only keeps one legend entry and one marker
    widths = sorted(stability["width"].unique())
    l0_max = float(np.nanmax([stability["l0_mean"].max(), stability["l0_null"].max() if "l0_null" in stability else np.nan]))
    x_max = max(l0_max, true_l0 or 0.0) * 1.08
    for r, hook in enumerate(hooks):
        st = stability[stability["hook"] == hook]
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            for (arch, width), g in st.groupby(["architecture", "width"]):
                g = g.sort_values("l0_mean")
                color = ARCHITECTURE_COLORS.get(arch)
                i = widths.index(width)
                marker = ["o", "s", "^", "D", "v"][i % 5]
                shift = ScaledTranslation(5 * (i - (len(widths) - 1) / 2) / 72, 0, fig.dpi_scale_trans)
                lo = g[f"{metric}_mean"] - g[f"{metric}_min"]
                hi = g[f"{metric}_max"] - g[f"{metric}_mean"]
                bars = ax.errorbar(g["l0_mean"], g[f"{metric}_mean"], yerr=[lo, hi], color=color, marker=marker, capsize=3, lw=1.8, ms=6, label=_series_label(arch, width, widths))
                for artist in bars.lines[0:1] + bars.lines[1] + bars.lines[2]:
                    artist.set_transform(artist.get_transform() + shift)
                p = pairs[(pairs["hook"] == hook) & pairs["variant"].isin(g["variant"])]
                ax.scatter([l0_of[(hook, v)] for v in p["variant"]], p[metric], color=color, alpha=0.3, s=14, lw=0, transform=ax.transData + shift)
                if f"{metric}_null" in g:
                    # the null at its own L0 (TopK: the same k; ReLU + L1 may settle elsewhere)
                    x_null = g["l0_null"].fillna(g["l0_mean"]) if "l0_null" in g else g["l0_mean"]
                    if _null_band(ax, x_null, g[f"{metric}_null"], g[f"{metric}_null_std"], color, ax.transData + shift):
                        _add_entry(extra, NULL_LABEL, _null_handle())
            for i, width in enumerate(widths):
                if width not in set(st["width"]):
                    continue
                row = st[st["width"] == width].iloc[0]
                label = "random decoders" if len(widths) == 1 else f"random, width {width}"
                handle, label = _baseline(ax, row[f"{metric}_baseline"], row.get(f"{metric}_baseline_std"), label, BASELINE_STYLES[i % len(BASELINE_STYLES)])
                _add_entry(extra, label, handle)
            if true_l0 is not None:
                ax.axvline(true_l0, color="black", ls=":", lw=1.3, label=f"true L0 = {true_l0:.1f}")
            ax.set_xlabel("L0 (mean active latents per input)")
            ax.set_ylabel(TABLE_METRICS[metric].label)
            ax.set_ylim(*UNIT_YLIM)
            ax.set_xlim(0, x_max)
            if len(hooks) > 1:
                ax.set_title(f"{hook}", fontsize=10)
    _top_legend(fig, axes, extra, title, len(hooks))
    return fig


def recovery_vs_l0(stability: pd.DataFrame, saes: pd.DataFrame, true_l0: float | None = None, title: str | None = None):
    """Ground-truth recovery against L0: mean over true features of the best |cos| with any latent,
    and the fraction of true features recovered at |cos| >= 0.9; per-seed dots, random-decoder baseline dashed."""
    paper_style()
    panels = [("gt_mean_max_cos", "mean best |cos| with a true feature"), ("gt_frac_recovered", "true features recovered (|cos| >= 0.9)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    extra = {}
    for ax, (col, label) in zip(axes, panels):
        for arch, g in stability.groupby("architecture"):
            g = g.sort_values("l0_mean")
            color = ARCHITECTURE_COLORS.get(arch)
            ax.plot(g["l0_mean"], g[f"{col}_mean"], marker="o", color=color, lw=1.8, label=_arch_label(arch))
            s = real_rows(saes)
            s = s[s["architecture"] == arch]
            ax.scatter(s["l0"], s[col], color=color, alpha=0.3, s=14, lw=0)
            if f"{col}_null" in g:
                x_null = g["l0_null"].fillna(g["l0_mean"]) if "l0_null" in g else g["l0_mean"]
                if _null_band(ax, x_null, g[f"{col}_null"], g[f"{col}_null_std"], color):
                    _add_entry(extra, NULL_LABEL, _null_handle())
        handle, name = _baseline(ax, stability[f"{col}_baseline"].mean())
        _add_entry(extra, name, handle)
        if true_l0 is not None:
            ax.axvline(true_l0, color="black", ls=":", lw=1.3, label=f"true L0 = {true_l0:.1f}")
        ax.set_xlabel("L0 (mean active latents per input)")
        ax.set_ylabel(label)
        ax.set_ylim(*UNIT_YLIM)
        ax.set_xlim(left=0)
    _top_legend(fig, axes, extra, title)
    return fig


def pick_heatmap_architecture(stability: pd.DataFrame) -> str:
    counts = stability.groupby("architecture")["variant"].count()
    return str(counts.sort_values(ascending=False, kind="stable").index[0])


#: at most this many (hook, variant) panels in the seed x seed figure; more: one architecture, first hook
MAX_HEATMAP_PANELS = 6


def seed_heatmap(pairs: pd.DataFrame, stability: pd.DataFrame, metric: str = "mmcs", architecture: str | None = None, title: str | None = None):
    """Seed x seed matrices of one metric: one panel per (hook, variant) when there are at most
    MAX_HEATMAP_PANELS of them, else one panel per sparsity of one architecture (the one with the
    most variants, or ``architecture``) on the first hook.

    The diagonal (a seed with itself, 1 by definition) is left grey; each panel title gives the
    random-decoder baseline, also marked in red on the colour bar, and the trained null (the
    same variant trained on Gaussian data with the store's mean and covariance: mean +- s.d.
    over its seed pairs), marked on the colour bar as a black-edged white line with a +- 2 s.d. band.
    """
    paper_style()
    pairs = real_rows(pairs)
    hooks = _ordered_hooks(stability["hook"])
    st = stability.assign(_hook=stability["hook"].map({h: i for i, h in enumerate(hooks)}))
    st = st.sort_values(["_hook", "architecture", "width", "sparsity"])
    if architecture is None and len(st) <= MAX_HEATMAP_PANELS:
        panels = st
        suptitle = f"{TABLE_METRICS[metric].label} between seeds"
    else:
        architecture = architecture or pick_heatmap_architecture(stability)
        panels = st[(st["hook"] == hooks[0]) & (st["architecture"] == architecture)]
        suptitle = f"{_arch_label(architecture)}: {TABLE_METRICS[metric].label} between seeds" + (f" ({hooks[0]})" if len(hooks) > 1 else "")
    show_hook = architecture is None and len(hooks) > 1
    show_arch = panels["architecture"].nunique() > 1
    show_width = panels["width"].nunique() > 1
    n = len(panels)
    # the colour bar gets its own narrow column so that every panel has the same size
    fig, axes = plt.subplots(
        1, n + 1, figsize=(2.9 * n + 1.0, 3.3 + 0.25 * (show_hook + (show_arch or show_width))), squeeze=False,
        gridspec_kw={"width_ratios": [1] * n + [0.06]},
    )
    cbar_ax = axes[0][-1]
    axes = axes[:, :-1]
    for ax, (_, row) in zip(axes[0], panels.iterrows()):
        p = pairs[(pairs["hook"] == row["hook"]) & (pairs["variant"] == row["variant"])]
        seeds = sorted(set(p["seed_a"]) | set(p["seed_b"]))
        mat = pd.DataFrame(np.eye(len(seeds)), index=seeds, columns=seeds)
        for _, q in p.iterrows():
            mat.loc[q["seed_a"], q["seed_b"]] = mat.loc[q["seed_b"], q["seed_a"]] = q[metric]
        last = ax is axes[0][-1]
        sns.heatmap(
            mat, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", square=True, annot_kws={"size": 8},
            mask=np.eye(len(seeds), dtype=bool), cbar=last, cbar_ax=cbar_ax if last else None,
            cbar_kws={"label": TABLE_METRICS[metric].label} if last else None,
        )
        ax.set_facecolor("0.9")
        ax.grid(False)
        lines = [row["hook"]] if show_hook else []
        name = " ".join(([_arch_label(row["architecture"])] if show_arch else []) + ([f"width {row['width']}"] if show_width else []))
        lines.append((f"{name}: " if name else "") + f"{row['sparsity_key']}={row['sparsity']:g}, L0={row['l0_mean']:.1f}")
        chance = f"random: {row[f'{metric}_baseline']:.2f}"
        null = row.get(f"{metric}_null", np.nan)
        if pd.notna(null):
            std = row.get(f"{metric}_null_std", np.nan)
            chance += f", null: {null:.2f}" + (f" ± {std:.2f}" if pd.notna(std) else "")
        lines.append(chance)
        ax.set_title("\n".join(lines), fontsize=9)
        ax.set_xlabel("seed")
        ax.set_ylabel("seed" if ax is axes[0][0] else "")
    cbar = axes[0][-1].collections[0].colorbar
    for b in panels[f"{metric}_baseline"].unique():
        cbar.ax.axhline(b, color="#d62728", lw=3)
    # the trained null on the colour bar: its mean as a black-edged white line, +- 2 s.d. as a band
    if f"{metric}_null" in panels:
        for _, row in panels.iterrows():
            null, std = row[f"{metric}_null"], row.get(f"{metric}_null_std", np.nan)
            if pd.isna(null):
                continue
            if pd.notna(std) and std > 0:
                cbar.ax.axhspan(max(null - 2 * std, 0), min(null + 2 * std, 1), color="white", alpha=0.35, lw=0)
            cbar.ax.axhline(null, color="black", lw=3.5)
            cbar.ax.axhline(null, color="white", lw=2)
    fig.tight_layout()
    fig.suptitle(title or suptitle, y=1.0, va="bottom")
    return fig


def latent_vs_truth(cosines: list[np.ndarray], labels: list[str], title: str | None = None):
    """Heatmaps of decoder-row x true-feature cosine, one panel per SAE.

    Latents are ordered by their best-matching true feature so a perfect
    recovery shows as a diagonal.
    """
    from saesim.analysis.ground_truth import order_latents_by_feature

    paper_style()
    n = len(cosines)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 0.8, 3.9), squeeze=False)
    for i, (ax, cos, label) in enumerate(zip(axes[0], cosines, labels)):
        order = order_latents_by_feature(cos)
        sns.heatmap(
            cos[order].T, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", cbar=i == n - 1, xticklabels=False, yticklabels=False, rasterized=True,
            cbar_kws={"label": "cos(decoder row, true feature)"} if i == n - 1 else None,
        )
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("SAE latent (sorted by best feature)")
        ax.set_ylabel("true feature" if i == 0 else "")
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.0, va="bottom")
    return fig


def grokking_curves(history: dict, title: str | None = None, p: int | None = None):
    """Train and test loss (log scale) and accuracy of the modular model against epoch,
    with the grokking epoch (test accuracy first >= 99%) marked and, given the modulus ``p``,
    chance level: accuracy 1/p and the loss ln p of a uniform guess."""
    paper_style()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = history["epochs"]
    for split, color in (("train", "#4C72B0"), ("test", "#C44E52")):
        ax_loss.plot(epochs, history[f"{split}_loss"], color=color, lw=1.6, label=split)
        ax_acc.plot(epochs, history[f"{split}_acc"], color=color, lw=1.6, label=split)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(*UNIT_YLIM)
    extra = {}
    if p:
        for ax, value in ((ax_loss, np.log(p)), (ax_acc, 1.0 / p)):
            handle, label = _baseline(ax, value, label=f"chance (uniform over {p} answers)")
            _add_entry(extra, label, handle)
    grok = history.get("grok_epoch")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        if grok:
            ax.axvline(grok, color="black", ls=":", lw=1.3, label=f"groks at epoch {grok}")
    _top_legend(fig, [ax_loss, ax_acc], extra, title)
    return fig


@contextmanager
def _seeded_jitter(seed: int = 0):
    """Seaborn's stripplot jitters with numpy's global RNG: seed it for the plot (same figure
    bytes on every run) and give the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def fourier_overlap_plot(fourier: pd.DataFrame, title: str | None = None):
    """Mean Fourier overlap of decoder rows per SAE variant, one panel per hook: bars are means
    over seeds, dots single SAEs; the dashed line is a random direction's expected overlap
    (subspace dimension / d_model). Where ``fourier`` has null rows (column ``null``), each bar
    also shows the trained null: SAEs of the same variant trained on Gaussian data with the
    store's mean and covariance (x markers, their mean dotted, +- 2 s.d. band)."""
    paper_style()
    null_fourier = fourier[fourier["null"].astype(bool)] if "null" in fourier else fourier.iloc[0:0]
    fourier = real_rows(fourier)
    hooks = _ordered_hooks(fourier["hook"])
    n_variants = fourier["variant"].nunique()
    fig, axes = plt.subplots(1, len(hooks), figsize=(max(4.5, 1.4 * n_variants + 2.0) * len(hooks), 4.0), squeeze=False, sharey=True)
    extra = {}
    for ax, hook in zip(axes[0], hooks):
        f = fourier[fourier["hook"] == hook].copy()
        order = list(dict.fromkeys(f.sort_values(["architecture", "variant"])["variant"]))
        palette = {v: ARCHITECTURE_COLORS.get(v.split("-")[0], "0.5") for v in order}
        sns.barplot(data=f, x="variant", y="act_mean_overlap", order=order, hue="variant", palette=palette, errorbar=None, ax=ax, alpha=0.8, legend=False)
        with _seeded_jitter():
            sns.stripplot(data=f, x="variant", y="act_mean_overlap", order=order, color="black", size=4, ax=ax)
        nf = null_fourier[null_fourier["hook"] == hook]
        for i, variant in enumerate(order):
            v = nf.loc[nf["variant"] == variant, "act_mean_overlap"]
            if len(v) == 0:
                continue
            mean, std = float(v.mean()), float(v.std(ddof=0)) if len(v) >= 2 else 0.0
            if std > 0:
                ax.fill_between([i - 0.42, i + 0.42], max(mean - 2 * std, 0), min(mean + 2 * std, 1), color="0.2", alpha=0.15, lw=0)
            ax.plot([i - 0.42, i + 0.42], [mean, mean], color="0.2", ls=":", lw=1.6)
            ax.scatter([i] * len(v), v, color="0.2", marker="x", s=22, zorder=5)
            _add_entry(extra, "trained null (Gaussian, same mean/cov): mean, ± 2 s.d., SAEs", _null_handle())
        bases = sorted(f["act_random_baseline"].unique())
        for i, base in enumerate(bases):
            handle, label = _baseline(ax, base, label="random direction" if len(bases) == 1 else f"random direction ({base:.2f})", style=BASELINE_STYLES[i % len(BASELINE_STYLES)])
            _add_entry(extra, label, handle)
        ax.set_ylim(*UNIT_YLIM)
        ax.set_xlabel("")
        ax.set_ylabel("mean Fourier overlap\nof decoder rows" if ax is axes[0][0] else "")
        ax.set_title(f"{hook} (random: {', '.join(f'{b:.2f}' for b in bases)})", fontsize=10)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right", rotation_mode="anchor")
    _top_legend(fig, axes, extra, title)
    return fig


MEASURE_LABELS = {m.name: m.label for m in RELATIONAL_MEASURES.values()}


def _p_label(p: float) -> str:
    return "p < 0.01" if p < 0.01 else f"p = {p:.2f}"


def paired_vs_random(table: pd.DataFrame, title: str | None = None, transfer: pd.DataFrame | None = None):
    """Relational similarity on the activation-correlation pairing vs random pairings.

    One panel per (hook_a, hook_b) pair (at most 4: matching hooks first); bars are the
    measure on the pairing, grey bars the null mean over random pairings with +-1 std,
    the permutation p-value above. Neuron space is shown beside the SAE latents. With
    ``transfer`` (comparisons/<cmp>/transfer.csv) each panel gets a line under its title: SAE A's
    explained variance on B's activations (own, raw, Procrustes, affine; docs/geometry.md).
    """
    paper_style()
    pairs = table[["hook_a", "hook_b"]].drop_duplicates()
    pairs = pairs.assign(same=pairs["hook_a"] == pairs["hook_b"]).sort_values("same", ascending=False, kind="stable").head(4)
    n = len(pairs)
    fig, axes = plt.subplots(1, n, figsize=(6.2 * n, 3.9), squeeze=False)
    spaces = [s for s in ("one_to_one", "many_to_one", "neurons") if s in set(table["space"])]
    measures = [m for m in MEASURE_LABELS if m in set(table["measure"])]
    width = 0.8 / len(spaces)
    colors = {"one_to_one": "#55A868", "many_to_one": "#8172B3", "neurons": "#DD8452"}
    from saesim.report.tables import UNIVERSALITY_SPACES

    for ax, (_, pair) in zip(axes[0], pairs.iterrows()):
        t = table[(table["hook_a"] == pair["hook_a"]) & (table["hook_b"] == pair["hook_b"])]
        for j, space in enumerate(spaces):
            for i, m in enumerate(measures):
                r = t[(t["space"] == space) & (t["measure"] == m)]
                if r.empty:
                    continue
                r = r.iloc[0]
                x = i + (j - (len(spaces) - 1) / 2) * width
                ax.bar(x, r["value"], width * 0.9, color=colors[space], label=UNIVERSALITY_SPACES[space] if i == 0 else None)
                ax.bar(x, r["null_mean"], width * 0.5, color=BASELINE_COLOR, alpha=0.8, yerr=r["null_std"], capsize=2, label="random pairing (mean +- std)" if i == 0 and j == 0 else None)
                ax.text(x, max(r["value"], r["null_mean"] + r["null_std"]) + 0.02, _p_label(r["p_value"]), ha="center", va="bottom", fontsize=6.5, rotation=90)
        ax.set_xticks(range(len(measures)), [MEASURE_LABELS[m] for m in measures], rotation=15)
        ax.set_ylim(min(0, float(table["value"].min()) - 0.05), 1.25)
        ax.set_ylabel("similarity")
        panel_title = f"A: {pair['hook_a']}\nB: {pair['hook_b']}"
        if transfer is not None:
            from saesim.similarity.universality.transfer import transfer_line

            line = transfer_line(transfer, pair["hook_a"], pair["hook_b"])
            panel_title += f"\n{line}" if line else ""
        ax.set_title(panel_title, fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.08), ncol=len(labels), frameon=False)
    if title:
        fig.suptitle(title, y=1.16)
    fig.tight_layout()
    return fig


def layer_heatmap(table: pd.DataFrame, measures: tuple[str, ...] = ("svcca", "rsa"), space: str = "one_to_one", title: str | None = None):
    """hooks_a x hooks_b heatmaps of relational measures on the correlation pairing; each cell
    shows the value and, below it, the random-pairing null mean. Hook names read horizontally
    on the y axis (never rotated onto each other), at 30 degrees on the x axis."""
    paper_style()
    t = table[table["space"] == space]
    hooks_a = list(dict.fromkeys(t["hook_a"]))
    hooks_b = list(dict.fromkeys(t["hook_b"]))
    # room for the longest hook name beside each panel (about 0.075 in per character at 9 pt)
    label_in = 0.075 * max(len(str(h)) for h in hooks_a + hooks_b)
    panel_w = max(1.3 * len(hooks_b) + 1.0, 3.6)
    fig, axes = plt.subplots(1, len(measures), squeeze=False,
                             figsize=((panel_w + label_in + 0.6) * len(measures), 0.95 * len(hooks_a) + 1.6 + 0.6 * label_in))
    for ax, m in zip(axes[0], measures):
        sub = t[t["measure"] == m]
        val = sub.pivot(index="hook_a", columns="hook_b", values="value").reindex(index=hooks_a, columns=hooks_b)
        null = sub.pivot(index="hook_a", columns="hook_b", values="null_mean").reindex(index=hooks_a, columns=hooks_b)
        annot = val.map(lambda v: f"{v:.2f}") + "\n(" + null.map(lambda v: f"{v:.2f}") + ")"
        sns.heatmap(val, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=annot, fmt="", annot_kws={"size": 9}, square=False,
                    xticklabels=hooks_b, yticklabels=hooks_a, cbar_kws={"shrink": 0.9})
        ax.set_yticklabels(hooks_a, rotation=0, fontsize=9)
        ax.set_xticklabels(hooks_b, rotation=30, ha="right", rotation_mode="anchor", fontsize=9)
        ax.set_title(f"{MEASURE_LABELS[m]}\n(random pairing in brackets)", fontsize=10)
        ax.set_xlabel("SAE B hook")
        ax.set_ylabel("SAE A hook")
    fig.tight_layout()
    if title:
        fig.suptitle(title, y=1.0, va="bottom")
    return fig


def coactivation_plot(summaries: pd.DataFrame, overlaps: pd.DataFrame, title: str | None = None):
    """Left: fraction of co-activation partners kept by matched latents across seeds, each seed
    pair a point, against the random-relabelling null (grey band, mean +- 2 s.d.). Right: the
    strongest co-activation pair's Jaccard index per SAE."""
    from matplotlib.patches import Patch

    keys = sorted({(h, v) for h, v in zip(summaries["hook"], summaries["variant"])}, key=lambda k: (natural_key(k[0]), natural_key(k[1])))
    labels = [f"{h}\n{v}" if summaries["hook"].nunique() > 1 else v for h, v in keys]
    x_of = {k: i for i, k in enumerate(keys)}
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.1 * len(keys) + 3), 3.8), sharex=True)
    ax = axes[0]
    for (h, v), group in overlaps.groupby(["hook", "variant"]):
        x = x_of[(h, v)]
        null_lo = (group["null_mean"] - 2 * group["null_std"]).min()
        null_hi = (group["null_mean"] + 2 * group["null_std"]).max()
        ax.fill_between([x - 0.35, x + 0.35], max(null_lo, 0), null_hi, color=BASELINE_COLOR, alpha=0.3, lw=0)
        ax.hlines(group["null_mean"].mean(), x - 0.35, x + 0.35, color=BASELINE_COLOR, ls="--", lw=1.2)
        ax.scatter(np.full(len(group), x) + np.linspace(-0.12, 0.12, len(group)), group["observed"], color="#DD8452", zorder=3, s=22)
    ax.set_ylabel("co-activation partners kept\nby matched latents")
    ax.set_ylim(*UNIT_YLIM)
    ax = axes[1]
    for (h, v), group in summaries.groupby(["hook", "variant"]):
        x = x_of[(h, v)]
        ax.scatter(np.full(len(group), x) + np.linspace(-0.12, 0.12, len(group)), group["top_jaccard"], color="#4C72B0", s=22)
    ax.set_ylabel("strongest pair's Jaccard index")
    ax.set_ylim(*UNIT_YLIM)
    for ax in axes:
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    extra = {
        "seed pair (observed)": plt.Line2D([], [], marker="o", ls="", color="#DD8452"),
        "random relabelling (null, +- 2 s.d.)": Patch(color=BASELINE_COLOR, alpha=0.3, lw=0),
        "SAE": plt.Line2D([], [], marker="o", ls="", color="#4C72B0"),
    }
    _top_legend(fig, axes, extra, title=title)
    return fig


#: colours of the stability metrics in the convergence figure (baselines dashed in the same colour)
CONVERGENCE_COLORS = {**{m.name: m.color for m in TABLE_METRICS.values()},
                      "explained_variance": "#8172B3", "dead_fraction": "#C44E52"}


def _count_label(n: float) -> str:
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"


def _samples_axis(ax, samples, fractions) -> None:
    """x = training samples seen, a tick at each snapshot: linear, or symlog (linear up to the
    first snapshot after 0, log beyond) where the snapshots span 30x or more (log-scale
    snapshots, e.g. the long reference run), so that the early ones do not pile up at 0."""
    x = np.asarray(samples, dtype=float)
    positive = x[x > 0]
    if len(positive) and positive.max() >= 30 * positive.min():
        ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
        ax.set_xlim(left=0, right=float(x.max()) * 1.3)
    else:
        ax.set_xlim(left=-0.02 * max(1.0, x.max()))
    ax.set_xticks(x)
    ax.set_xticks([], minor=True)
    ax.set_xticklabels([f"{_count_label(n) if n else '0'}\n{f:.0%}" for n, f in zip(x, fractions)], fontsize=7)
    ax.set_xlabel("training samples seen (fraction)")


def trajectory_plot(table: pd.DataFrame, title: str | None = None):
    """The training trajectory from the initialised SAE (x = training samples seen from 0; log
    beyond the first snapshot where the snapshots are log-spaced, :func:`_samples_axis`):
    left, cross-seed stability (solid, min-max bars) with the trained null's pairs at the same
    point of training (dotted, x) and random decoders (dashed); middle, drift from
    initialisation, the median over latents of cos(decoder row now, row at step 0) (mean over
    seeds, 10-90% quantile band), real (solid) and null (dotted); right, explained variance and
    dead fraction on held-out rows (null dotted)."""

    paper_style()
    t = table.sort_values("samples")
    x = t["samples"].to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(14.5, 3.9))
    extra = {}
    ax = axes[0]
    for m in TABLE_METRICS:
        color = CONVERGENCE_COLORS[m]
        lo = t[f"{m}_mean"] - t[f"{m}_min"]
        hi = t[f"{m}_max"] - t[f"{m}_mean"]
        ax.errorbar(x, t[f"{m}_mean"], yerr=[lo, hi], color=color, marker="o", capsize=3, lw=1.8, ms=5, label=TABLE_METRICS[m].label)
        base = t.get(f"{m}_baseline")
        if base is not None and base.notna().any():
            ax.axhline(float(base.iloc[0]), color=color, ls="--", lw=1.2, alpha=0.8)
            extra.setdefault("random decoders (dashed)", plt.Line2D([], [], color=BASELINE_COLOR, ls="--", lw=1.2))
        null = t.get(f"{m}_null")
        if null is not None and null.notna().any():
            ax.plot(x, null, color=color, **NULL_STYLE)
            extra.setdefault("trained null at the same point (dotted, x)", plt.Line2D([], [], color="0.2", **NULL_STYLE))
    ax.set_ylabel("cross-seed similarity")
    ax = axes[1]
    ax.plot(x, t["drift_cos_median"], color="#4C72B0", marker="o", lw=1.8, ms=5)
    ax.fill_between(x, t["drift_cos_q10"], t["drift_cos_q90"], color="#4C72B0", alpha=0.15, lw=0)
    if t["drift_cos_median_null"].notna().any():
        ax.plot(x, t["drift_cos_median_null"], color="#4C72B0", **NULL_STYLE)
    ax.set_ylabel("drift: median cos(row now, row at step 0)")
    ax.set_title("1 = decoder still at its initialisation", fontsize=9, fontweight="normal", color="0.3")
    ax = axes[2]
    for m, label in (("explained_variance", "explained variance"), ("dead_fraction", "dead fraction")):
        color = CONVERGENCE_COLORS[m]
        ax.plot(x, t[f"{m}_mean"], color=color, marker="o", lw=1.8, ms=5, label=label)
        if t[f"{m}_null"].notna().any():
            ax.plot(x, t[f"{m}_null"], color=color, **NULL_STYLE)
    ax.set_ylabel("held-out rows")
    ax.legend(loc="best", fontsize=8, frameon=False)
    for ax in axes:
        _samples_axis(ax, x, t["fraction"])
        ax.set_ylim(*UNIT_YLIM)
    _top_legend(fig, axes[:1], extra, title)
    return fig


#: colours and labels of the seed modes (saesim.analysis.seed_modes)
SEED_MODE_STYLES = {
    "both": ("#4C72B0", "independent init, different data order (both)"),
    "init_only": ("#55A868", "independent init, same data order (init_only)"),
    "data_only": ("#C44E52", "shared init, different data order (data_only)"),
}


def seed_modes_plot(table: pd.DataFrame, title: str | None = None):
    """Cross-seed stability (PW-MCC and Hungarian mean |cos|; mean over seed pairs, bars
    min-max) and drift from initialisation (median over latents of cos(row now, row at
    step 0), mean over seeds) against training samples seen from 0, one line per seed mode;
    dashed grey: random decoders of the same shape."""

    paper_style()
    metrics = [m for m in ("mmcs", "hungarian_mean_cos") if m in TABLE_METRICS]
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.8 * (len(metrics) + 1), 3.9))
    extra = {}
    for mode, g in table.groupby("seed_mode", sort=False):
        color, label = SEED_MODE_STYLES.get(mode, ("0.3", mode))
        g = g.sort_values("samples")
        x = g["samples"].to_numpy(dtype=float)
        for ax, m in zip(axes, metrics):
            ax.errorbar(x, g[f"{m}_mean"], yerr=[g[f"{m}_mean"] - g[f"{m}_min"], g[f"{m}_max"] - g[f"{m}_mean"]],
                        color=color, marker="o", capsize=3, lw=1.8, ms=5, label=label)
        axes[-1].plot(x, g["drift_cos_median"], color=color, marker="o", lw=1.8, ms=5)
    t = table.sort_values("samples").drop_duplicates("fraction")
    for ax, m in zip(axes, metrics):
        base = table[f"{m}_baseline"]
        if base.notna().any():
            ax.axhline(float(base.iloc[0]), color=BASELINE_COLOR, ls="--", lw=1.2)
            extra.setdefault("random decoders (dashed)", plt.Line2D([], [], color=BASELINE_COLOR, ls="--", lw=1.2))
        ax.set_ylabel(TABLE_METRICS[m].label)
    axes[-1].set_ylabel("drift: median cos(row now, row at step 0)")
    for ax in axes:
        _samples_axis(ax, t["samples"], t["fraction"])
        ax.set_ylim(*UNIT_YLIM)
    _top_legend(fig, axes, extra, title)
    return fig


# ---- suites -------------------------------------------------------------------

AXIS_LABELS = {"width": "width", "k": "k", "architecture": "architecture", "hook": "hook"}


def _suite_tick(label: str, value, axis: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or str(value) == label:
        return label
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return f"{label}\n({AXIS_LABELS.get(axis, axis)} {value})"


def suite_matrix(table: pd.DataFrame, members: list[str], title: str | None = None):
    """Member x member heatmaps of a suite (row's latents -> column SAE), as in the Gemma Scope
    notebooks: mean max cos and, for each threshold, the fraction of the row's latents whose best
    match in the column reaches it. Each cell reads "value (random)", the random value being
    that of isotropic Gaussian decoders of the same shapes; the diagonal is left grey."""
    paper_style()
    axis = str(table["axis"].iloc[0])
    cos = "cos" if str(table["cosine"].iloc[0]) == "signed" else "|cos|"
    thresholds = [c[len("frac_best_"):] for c in table.columns if c.startswith("frac_best_") and not c.endswith("_baseline")]
    panels = [("mmcs", f"mean max {cos}, row -> column")] + [
        (f"frac_best_{t}", f"row latents with best {cos} >= {t}") for t in thresholds
    ]
    values = {}
    for _, r in table.iterrows():
        values.setdefault(r["row"], r["row_value"])
        values.setdefault(r["col"], r["col_value"])
    ticks = [_suite_tick(m, values.get(m), axis) for m in members]
    n = len(members)
    # panels wrap into a grid (two per row up to four panels, then three), so the figure stays
    # about as wide as it is tall and a page can show it at a readable size
    n_cols = min(len(panels), 2 if len(panels) <= 4 else 3)
    n_rows = int(np.ceil(len(panels) / n_cols))
    label_in = 0.07 * max(len(line) for tick in ticks for line in tick.split("\n"))
    cell_in = 0.85 if n <= 4 else 0.6
    size = cell_in * n + 1.0
    fig = plt.figure(figsize=(n_cols * (size + label_in + 0.4) + 0.6, n_rows * (size + 0.75 * label_in + 0.9)))
    # the colour bar gets its own narrow column so that every panel has the same size
    gs = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[1] * n_cols + [0.05])
    cbar_ax = fig.add_subplot(gs[:, -1])
    axes = [fig.add_subplot(gs[i // n_cols, i % n_cols]) for i in range(len(panels))]
    mask = np.eye(n, dtype=bool)
    annot_size = 9 if n <= 4 else (8 if n <= 6 else 7)
    for k, (ax, (metric, label)) in enumerate(zip(axes, panels)):
        val = table.pivot(index="row", columns="col", values=metric).reindex(index=members, columns=members)
        base = table.pivot(index="row", columns="col", values=f"{metric}_baseline").reindex(index=members, columns=members)
        annot = np.full((n, n), "", dtype=object)
        for i in range(n):
            for j in range(n):
                if i != j and np.isfinite(val.iat[i, j]):
                    annot[i, j] = f"{val.iat[i, j]:.2f}\n({base.iat[i, j]:.2f})"
        sns.heatmap(val.astype(float), ax=ax, vmin=0, vmax=1, cmap="viridis", annot=annot, fmt="", mask=mask,
                    annot_kws={"size": annot_size}, square=True, cbar=k == 0, cbar_ax=cbar_ax if k == 0 else None,
                    xticklabels=ticks, yticklabels=ticks)
        ax.set_facecolor("0.9")
        ax.grid(False)
        ax.set_title(f"{label}\n(random decoders in brackets)", fontsize=10)
        first_col, last_row = k % n_cols == 0, k >= len(panels) - n_cols
        ax.set_xlabel("column SAE" if last_row else "")
        ax.set_ylabel("row SAE" if first_col else "")
        ax.set_yticklabels(ticks if first_col else [], rotation=0, fontsize=9)
        ax.set_xticklabels(ticks if last_row else [], rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
    fig.tight_layout()
    fig.suptitle(title or "suite", y=1.0, va="bottom")
    return fig


#: partner counts shown in the splitting histograms: 0 .. SPLIT_BINS - 1, then "SPLIT_BINS+"
SPLIT_BINS = 5


def suite_splitting(cells: list[dict], title: str | None = None):
    """For each pair of different widths in a suite, the share of narrow latents with 0, 1, 2, ...
    wide partners at cos >= t (one bar group per threshold); the panel title gives the fraction of
    wide latents with no narrow partner and its value for random decoders."""
    paper_style()
    pairs = [c for c in cells if "splitting" in c["pair"]]
    if not pairs:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no pair of different widths in this suite", ha="center", va="center")
        if title:
            fig.suptitle(title)
        return fig
    ncols = min(3, len(pairs))
    nrows = int(np.ceil(len(pairs) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.6 * nrows), squeeze=False, sharey=True)
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    palette = sns.color_palette("crest", n_colors=len(pairs[0]["pair"]["splitting"]["thresholds"]))
    for ax, cell in zip(axes.ravel(), pairs):
        sp = cell["pair"]["splitting"]
        narrow = cell["saes"][sp["narrow"]]
        wide = cell["saes"][1 - sp["narrow"]]
        ts = sp["thresholds"]
        width = 0.8 / len(ts)
        unmatched = []
        for k, t in enumerate(ts):
            r = sp["by_threshold"][t]
            h = np.asarray(r["hist"], dtype=float)
            shown = np.append(h[:SPLIT_BINS], h[SPLIT_BINS:].sum()) / max(1, sp["n_narrow"])
            ax.bar(np.arange(SPLIT_BINS + 1) + (k - (len(ts) - 1) / 2) * width, shown, width=width, color=palette[k],
                   label=f"t = {t}")
            unmatched.append(f"t = {t}: {r['frac_wide_unmatched']:.2f} ({r['baseline']['frac_wide_unmatched']:.2f})")
        ax.set_xticks(np.arange(SPLIT_BINS + 1), [str(i) for i in range(SPLIT_BINS)] + [f"{SPLIT_BINS}+"])
        ax.set_xlabel(f"wide partners per narrow latent (top-{sp['top_m']})")
        ax.set_title(f"{narrow['label']} ({sp['n_narrow']}) -> {wide['label']} ({sp['n_wide']})", fontsize=9)
        ax.text(0.98, 0.97, "wide latents unmatched (random)\n" + "\n".join(unmatched), transform=ax.transAxes,
                ha="right", va="top", fontsize=7, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})
    for row in axes:
        row[0].set_ylabel("fraction of narrow latents")
    axes[0][0].set_ylim(0, 1.04)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.tight_layout()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(labels), frameon=False)
    if title:
        fig.suptitle(title, y=1.0 + 0.09 / nrows, va="bottom")
    return fig


def pwmcc_vs_gtmcc_plot(result: dict, title: str | None = None):
    """One point per SAE variant: cross-seed PW-MCC against GT-MCC, with both isotropic chance levels."""
    paper_style()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    pts = pd.DataFrame(result["variants"])
    if len(pts):
        ax.errorbar(pts["pwmcc"], pts["gtmcc"], xerr=pts["pwmcc_std"], yerr=pts["gtmcc_std"], fmt="o", color="C0", capsize=2, lw=1)
        for r in pts.itertuples():
            ax.annotate(f"{r.variant} (L0 {r.l0:.1f})", (r.pwmcc, r.gtmcc), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if result.get("pwmcc_chance") is not None:
        ax.axvline(result["pwmcc_chance"], color="grey", ls="--", lw=1, label=f"PW-MCC, random decoders ({result['pwmcc_chance']:.2f})")
    if result.get("gtmcc_chance") is not None:
        ax.axhline(result["gtmcc_chance"], color="grey", ls=":", lw=1.3, label=f"GT-MCC, random decoders ({result['gtmcc_chance']:.2f})")
    ax.plot([0, 1], [0, 1], color="black", lw=0.6, alpha=0.4, label="y = x")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("cross-seed PW-MCC (Hungarian mean matched |cos|)")
    ax.set_ylabel("GT-MCC (sae_lens.synthetic, vs true features)")
    r, rho = result.get("pearson_r"), result.get("spearman_rho")
    corr = f"over {result['n_variants']} variants: Pearson r = {r:.2f}, Spearman rho = {rho:.2f}" if r is not None else f"{result['n_variants']} variants (too few for a correlation)"
    ax.set_title((title + "\n" if title else "") + corr, fontsize=9)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
