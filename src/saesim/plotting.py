"""Figures for papers: seaborn/matplotlib, baselines always drawn, one colour per architecture."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.transforms import ScaledTranslation  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .tables import METRIC_LABELS, STABILITY_METRICS  # noqa: E402

ARCHITECTURE_COLORS = {
    "standard": "#4C72B0",
    "topk": "#DD8452",
    "batchtopk": "#55A868",
    "jumprelu": "#C44E52",
    "matryoshka_batchtopk": "#8172B3",
}
ARCHITECTURE_LABELS = {
    "standard": "ReLU + L1",
    "topk": "TopK",
    "batchtopk": "BatchTopK",
    "jumprelu": "JumpReLU",
    "matryoshka_batchtopk": "Matryoshka BatchTopK",
}
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


def _natural_key(text: str):
    """Sort key that orders ``blocks.6`` before ``blocks.15``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def _ordered_hooks(hooks) -> list[str]:
    return sorted(dict.fromkeys(hooks), key=_natural_key)


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


def _add_entry(entries: dict, label: str, handle) -> None:
    """Keep one legend entry per label, preferring a band-and-line handle over a bare line."""
    if label not in entries or isinstance(handle, tuple):
        entries[label] = handle


def _top_legend(fig, axes, extra: dict | None = None, title: str | None = None, n_rows: int = 1) -> None:
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
    ncol = max(1, len(labels) if len(labels) <= 4 else int(np.ceil(len(labels) / 2)))
    fig.tight_layout()
    fig.legend([entries[lab] for lab in labels], labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=ncol, frameon=False)
    if title:
        legend_rows = int(np.ceil(len(labels) / ncol))
        fig.suptitle(title, y=1.0 + (0.02 + 0.075 * legend_rows) / n_rows, va="bottom")


def stability_vs_l0(stability: pd.DataFrame, pairs: pd.DataFrame, true_l0: float | None = None, title: str | None = None):
    """Cross-seed stability against L0: one panel per metric (columns) and hook (rows).

    Points are the mean over seed pairs at each variant's measured L0 (mean over
    seeds); error bars span the min-max over seed pairs; faint dots are the single
    pairs. The dashed grey line is the same metric on random decoders of the same
    shape, the grey band +- 2 s.d. over random draws; the dotted vertical line is
    the true L0 where known. Series of different widths are drawn a few points apart
    along x (a display offset, not a data change) so that equal L0s stay visible.
    """
    paper_style()
    hooks = _ordered_hooks(stability["hook"])
    metrics = list(STABILITY_METRICS)
    fig, axes = plt.subplots(len(hooks), len(metrics), figsize=(4.6 * len(metrics), 3.6 * len(hooks)), squeeze=False)
    l0_of = stability.set_index(["hook", "variant"])["l0_mean"]
    extra = {}
    # labels, markers and baseline styles by width over the whole table, so that a
    # width trained at some hooks only keeps one legend entry and one marker
    widths = sorted(stability["width"].unique())
    x_max = max(float(stability["l0_mean"].max()), true_l0 or 0.0) * 1.08
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
            ax.set_ylabel(METRIC_LABELS[metric])
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
            s = saes[saes["architecture"] == arch]
            ax.scatter(s["l0"], s[col], color=color, alpha=0.3, s=14, lw=0)
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
    random-decoder baseline, also marked in red on the colour bar.
    """
    paper_style()
    hooks = _ordered_hooks(stability["hook"])
    st = stability.assign(_hook=stability["hook"].map({h: i for i, h in enumerate(hooks)}))
    st = st.sort_values(["_hook", "architecture", "width", "sparsity"])
    if architecture is None and len(st) <= MAX_HEATMAP_PANELS:
        panels = st
        suptitle = f"{METRIC_LABELS[metric]} between seeds"
    else:
        architecture = architecture or pick_heatmap_architecture(stability)
        panels = st[(st["hook"] == hooks[0]) & (st["architecture"] == architecture)]
        suptitle = f"{_arch_label(architecture)}: {METRIC_LABELS[metric]} between seeds" + (f" ({hooks[0]})" if len(hooks) > 1 else "")
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
            cbar_kws={"label": METRIC_LABELS[metric]} if last else None,
        )
        ax.set_facecolor("0.9")
        ax.grid(False)
        lines = [row["hook"]] if show_hook else []
        name = " ".join(([_arch_label(row["architecture"])] if show_arch else []) + ([f"width {row['width']}"] if show_width else []))
        lines.append((f"{name}: " if name else "") + f"{row['sparsity_key']}={row['sparsity']:g}, L0={row['l0_mean']:.1f}")
        lines.append(f"random: {row[f'{metric}_baseline']:.2f}")
        ax.set_title("\n".join(lines), fontsize=9)
        ax.set_xlabel("seed")
        ax.set_ylabel("seed" if ax is axes[0][0] else "")
    cbar = axes[0][-1].collections[0].colorbar
    for b in panels[f"{metric}_baseline"].unique():
        cbar.ax.axhline(b, color="#d62728", lw=3)
    fig.tight_layout()
    fig.suptitle(title or suptitle, y=1.0, va="bottom")
    return fig


def latent_vs_truth(cosines: list[np.ndarray], labels: list[str], title: str | None = None):
    """Heatmaps of decoder-row x true-feature cosine, one panel per SAE.

    Latents are ordered by their best-matching true feature so a perfect
    recovery shows as a diagonal.
    """
    from .ground_truth import order_latents_by_feature

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


def fourier_overlap_plot(fourier: pd.DataFrame, title: str | None = None):
    """Mean Fourier overlap of decoder rows per SAE variant, one panel per hook: bars are means
    over seeds, dots single SAEs; the dashed line is a random direction's expected overlap
    (subspace dimension / d_model)."""
    paper_style()
    hooks = _ordered_hooks(fourier["hook"])
    n_variants = fourier["variant"].nunique()
    fig, axes = plt.subplots(1, len(hooks), figsize=(max(4.5, 1.4 * n_variants + 2.0) * len(hooks), 4.0), squeeze=False, sharey=True)
    extra = {}
    for ax, hook in zip(axes[0], hooks):
        f = fourier[fourier["hook"] == hook].copy()
        order = list(dict.fromkeys(f.sort_values(["architecture", "variant"])["variant"]))
        palette = {v: ARCHITECTURE_COLORS.get(v.split("-")[0], "0.5") for v in order}
        sns.barplot(data=f, x="variant", y="act_mean_overlap", order=order, hue="variant", palette=palette, errorbar=None, ax=ax, alpha=0.8, legend=False)
        sns.stripplot(data=f, x="variant", y="act_mean_overlap", order=order, color="black", size=4, ax=ax)
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


MEASURE_LABELS = {"svcca": "SVCCA", "rsa": "RSA (Spearman)", "mutual_knn": "mutual kNN (Jaccard)", "cka": "linear CKA"}


def _p_label(p: float) -> str:
    return "p < 0.01" if p < 0.01 else f"p = {p:.2f}"


def paired_vs_random(table: pd.DataFrame, title: str | None = None):
    """Relational similarity on the activation-correlation pairing vs random pairings.

    One panel per (hook_a, hook_b) pair (at most 4: matching hooks first); bars are the
    measure on the pairing, grey bars the null mean over random pairings with +-1 std,
    the permutation p-value above. Neuron space is shown beside the SAE latents.
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
    from .tables import UNIVERSALITY_SPACES

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
        ax.set_title(f"A: {pair['hook_a']}\nB: {pair['hook_b']}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.08), ncol=len(labels), frameon=False)
    if title:
        fig.suptitle(title, y=1.16)
    fig.tight_layout()
    return fig


def layer_heatmap(table: pd.DataFrame, measures: tuple[str, ...] = ("svcca", "rsa"), space: str = "one_to_one", title: str | None = None):
    """hooks_a x hooks_b heatmaps of relational measures on the correlation pairing; each cell
    shows the value and, below it, the random-pairing null mean."""
    paper_style()
    t = table[table["space"] == space]
    hooks_a = list(dict.fromkeys(t["hook_a"]))
    hooks_b = list(dict.fromkeys(t["hook_b"]))
    fig, axes = plt.subplots(1, len(measures), figsize=(1.6 * len(hooks_b) * len(measures) + 3.5, 1.1 * len(hooks_a) + 2.2), squeeze=False)
    for ax, m in zip(axes[0], measures):
        sub = t[t["measure"] == m]
        val = sub.pivot(index="hook_a", columns="hook_b", values="value").reindex(index=hooks_a, columns=hooks_b)
        null = sub.pivot(index="hook_a", columns="hook_b", values="null_mean").reindex(index=hooks_a, columns=hooks_b)
        annot = val.map(lambda v: f"{v:.2f}") + "\n(" + null.map(lambda v: f"{v:.2f}") + ")"
        sns.heatmap(val, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=annot, fmt="", annot_kws={"size": 8}, square=False)
        ax.set_title(f"{MEASURE_LABELS[m]} (random pairing in brackets)", fontsize=10)
        ax.set_xlabel("SAE B hook")
        ax.set_ylabel("SAE A hook")
    if title:
        fig.suptitle(title, y=1.04)
    fig.tight_layout()
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
