"""Figures for papers: seaborn/matplotlib, baselines always drawn, one colour per architecture."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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


def stability_vs_l0(stability: pd.DataFrame, pairs: pd.DataFrame, true_l0: float | None = None, title: str | None = None):
    """Cross-seed stability against L0: one panel per metric (columns) and hook (rows).

    Points are the mean over seed pairs at each variant's measured L0 (mean over
    seeds); error bars span the min-max over seed pairs; faint dots are the single
    pairs. The dashed grey line is the same metric on random decoders of the same
    shape; the dotted vertical line is the true L0 where known.
    """
    paper_style()
    hooks = list(dict.fromkeys(stability["hook"]))
    metrics = list(STABILITY_METRICS)
    fig, axes = plt.subplots(len(hooks), len(metrics), figsize=(4.6 * len(metrics), 3.6 * len(hooks)), squeeze=False)
    l0_of = stability.set_index(["hook", "variant"])["l0_mean"]
    for r, hook in enumerate(hooks):
        st = stability[stability["hook"] == hook]
        widths = sorted(st["width"].unique())
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            for (arch, width), g in st.groupby(["architecture", "width"]):
                g = g.sort_values("l0_mean")
                color = ARCHITECTURE_COLORS.get(arch)
                marker = ["o", "s", "^", "D", "v"][widths.index(width) % 5]
                lo = g[f"{metric}_mean"] - g[f"{metric}_min"]
                hi = g[f"{metric}_max"] - g[f"{metric}_mean"]
                ax.errorbar(g["l0_mean"], g[f"{metric}_mean"], yerr=[lo, hi], color=color, marker=marker, capsize=3, lw=1.8, ms=6, label=_series_label(arch, width, widths))
                p = pairs[(pairs["hook"] == hook) & pairs["variant"].isin(g["variant"])]
                ax.scatter([l0_of[(hook, v)] for v in p["variant"]], p[metric], color=color, alpha=0.25, s=12, lw=0)
            for width in widths:
                b = st[st["width"] == width][f"{metric}_baseline"].iloc[0]
                ax.axhline(b, color=BASELINE_COLOR, ls="--", lw=1.3, label="random decoders" if len(widths) == 1 else f"random, width {width}")
            if true_l0 is not None:
                ax.axvline(true_l0, color="black", ls=":", lw=1.3, label=f"true L0 = {true_l0:.1f}")
            ax.set_xlabel("L0 (mean active latents per input)")
            ax.set_ylabel(METRIC_LABELS[metric])
            ax.set_ylim(0, 1.02)
            if len(hooks) > 1:
                ax.set_title(f"{hook}", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0 + 0.06 / len(hooks)), ncol=min(len(labels), 4), frameon=False)
    if title:
        fig.suptitle(title, y=1.0 + 0.14 / len(hooks))
    fig.tight_layout()
    return fig


def recovery_vs_l0(stability: pd.DataFrame, saes: pd.DataFrame, true_l0: float | None = None, title: str | None = None):
    """Ground-truth recovery against L0: mean over true features of the best |cos| with any latent,
    and the fraction of true features recovered at |cos| >= 0.9; per-seed dots, random-decoder baseline dashed."""
    paper_style()
    panels = [("gt_mean_max_cos", "mean best |cos| with a true feature"), ("gt_frac_recovered", "true features recovered (|cos| >= 0.9)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (col, label) in zip(axes, panels):
        for arch, g in stability.groupby("architecture"):
            g = g.sort_values("l0_mean")
            color = ARCHITECTURE_COLORS.get(arch)
            ax.plot(g["l0_mean"], g[f"{col}_mean"], marker="o", color=color, lw=1.8, label=_arch_label(arch))
            s = saes[saes["architecture"] == arch]
            ax.scatter(s["l0"], s[col], color=color, alpha=0.3, s=14, lw=0)
        ax.axhline(stability[f"{col}_baseline"].mean(), color=BASELINE_COLOR, ls="--", lw=1.3, label="random decoders")
        if true_l0 is not None:
            ax.axvline(true_l0, color="black", ls=":", lw=1.3, label=f"true L0 = {true_l0:.1f}")
        ax.set_xlabel("L0 (mean active latents per input)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.08), ncol=min(len(labels), 4), frameon=False)
    if title:
        fig.suptitle(title, y=1.16)
    fig.tight_layout()
    return fig


def pick_heatmap_architecture(stability: pd.DataFrame) -> str:
    counts = stability.groupby("architecture")["variant"].count()
    return str(counts.sort_values(ascending=False, kind="stable").index[0])


def seed_heatmap(pairs: pd.DataFrame, stability: pd.DataFrame, metric: str = "mmcs", architecture: str | None = None, title: str | None = None):
    """Seed x seed matrices of one metric, one panel per sparsity of one architecture (first hook).

    The diagonal is 1 by definition; the panel title gives the random-decoder baseline.
    """
    paper_style()
    hook = stability["hook"].iloc[0]
    architecture = architecture or pick_heatmap_architecture(stability)
    st = stability[(stability["hook"] == hook) & (stability["architecture"] == architecture)].sort_values(["width", "sparsity"])
    n = len(st)
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n + 0.8, 3.2), squeeze=False)
    for ax, (_, row) in zip(axes[0], st.iterrows()):
        p = pairs[(pairs["hook"] == hook) & (pairs["variant"] == row["variant"])]
        seeds = sorted(set(p["seed_a"]) | set(p["seed_b"]))
        mat = pd.DataFrame(np.eye(len(seeds)), index=seeds, columns=seeds)
        for _, q in p.iterrows():
            mat.loc[q["seed_a"], q["seed_b"]] = mat.loc[q["seed_b"], q["seed_a"]] = q[metric]
        sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", cbar=ax is axes[0][-1], square=True, annot_kws={"size": 8})
        ax.set_title(f"{row['sparsity_key']}={row['sparsity']:g}, L0={row['l0_mean']:.1f}\nrandom: {row[f'{metric}_baseline']:.2f}", fontsize=9)
        ax.set_xlabel("seed")
        ax.set_ylabel("seed" if ax is axes[0][0] else "")
    fig.suptitle(title or f"{_arch_label(architecture)}: {METRIC_LABELS[metric]} between seeds", y=1.04)
    fig.tight_layout()
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
        sns.heatmap(cos[order].T, ax=ax, vmin=-1, vmax=1, cmap="RdBu_r", cbar=i == n - 1, xticklabels=False, yticklabels=False, rasterized=True)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("SAE latent (sorted by best feature)")
        ax.set_ylabel("true feature" if i == 0 else "")
    if title:
        fig.suptitle(title, y=1.03)
    fig.tight_layout()
    return fig


def grokking_curves(history: dict, title: str | None = None):
    """Train and test loss (log scale) and accuracy of the modular model against epoch,
    with the grokking epoch (test accuracy first >= 99%) marked."""
    paper_style()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = history["epochs"]
    for split, color in (("train", "#4C72B0"), ("test", "#C44E52")):
        ax_loss.plot(epochs, history[f"{split}_loss"], color=color, lw=1.6, label=split)
        ax_acc.plot(epochs, history[f"{split}_acc"], color=color, lw=1.6, label=split)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    grok = history.get("grok_epoch")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        if grok:
            ax.axvline(grok, color="black", ls=":", lw=1.3, label=f"groks at epoch {grok}")
    ax_acc.legend(frameon=False, loc="lower right")
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def fourier_overlap_plot(fourier: pd.DataFrame, title: str | None = None):
    """Mean Fourier overlap of decoder rows per SAE variant, one panel per hook: bars are means
    over seeds, dots single SAEs; the dashed line is a random direction's expected overlap
    (subspace dimension / d_model)."""
    paper_style()
    hooks = list(dict.fromkeys(fourier["hook"]))
    fig, axes = plt.subplots(1, len(hooks), figsize=(5.2 * len(hooks), 3.8), squeeze=False)
    for ax, hook in zip(axes[0], hooks):
        f = fourier[fourier["hook"] == hook].copy()
        order = list(dict.fromkeys(f.sort_values(["architecture", "variant"])["variant"]))
        palette = {v: ARCHITECTURE_COLORS.get(v.split("-")[0], "0.5") for v in order}
        sns.barplot(data=f, x="variant", y="act_mean_overlap", order=order, hue="variant", palette=palette, errorbar=None, ax=ax, alpha=0.8, legend=False)
        sns.stripplot(data=f, x="variant", y="act_mean_overlap", order=order, color="black", size=4, ax=ax)
        base = f["act_random_baseline"].iloc[0]
        ax.axhline(base, color=BASELINE_COLOR, ls="--", lw=1.3, label=f"random direction ({base:.2f})")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("")
        ax.set_ylabel("mean Fourier overlap of decoder rows")
        ax.set_title(hook, fontsize=10)
        ax.tick_params(axis="x", rotation=30)
        ax.legend(frameon=False, loc="upper right")
    if title:
        fig.suptitle(title, y=1.03)
    fig.tight_layout()
    return fig
