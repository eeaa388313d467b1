"""The per-latent figure (three panels; docs/per-latent.md "Reading the figure")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from saesim.report.figures import BASELINE_COLOR, UNIT_YLIM, paper_style, plt  # noqa: F401

REAL_COLOR = "#4C72B0"
NULL_COLOR = "#C44E52"


def _label(hook: str, variant: str, hooks: list[str]) -> str:
    return variant if len(hooks) == 1 else f"{hook.replace('blocks.', 'b').replace('.hook_', ' ')}\n{variant}"


def _binned(freq: np.ndarray, reap: np.ndarray, edges: np.ndarray):
    idx = np.digitize(freq, edges)
    centers, means = [], []
    for b in range(1, len(edges)):
        m = idx == b
        if m.sum() >= 3:
            centers.append(np.sqrt(edges[b - 1] * edges[b]))
            means.append(reap[m].mean())
    return np.array(centers), np.array(means)


def per_latent_figure(variants: pd.DataFrame, spectra: dict, scatter: dict, title: str | None = None):
    """(a) reappearance probability against firing frequency (log), real and null SAEs' latents
    pooled over variants, binned means, and random decoders' rate; (b) per variant, the stable
    fraction and the explained-variance share of the stable latents, real beside null, with 95%
    intervals where there are >= 3 seed pairs; (c) squared cosines of the principal angles
    between seed pairs' unstable subspaces (mean spectrum per variant), null dashed, isotropic
    chance r/d dotted."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [1, 1.4, 1]})
    hooks = list(dict.fromkeys(variants["hook"]))

    ax = axes[0]
    edges = np.logspace(-5, 0, 16)
    for role, color, name in (("real", REAL_COLOR, "SAEs"), ("null", NULL_COLOR, "null SAEs")):
        pts = [v for (h, var, r), v in scatter.items() if r == role]
        if not pts:
            continue
        p = np.concatenate(pts)
        p = p[p[:, 0] > 0]
        rng = np.random.default_rng(0)
        ax.scatter(p[:, 0], np.clip(p[:, 1] + rng.uniform(-0.02, 0.02, len(p)), -0.05, 1.05), s=4, alpha=0.15, color=color, lw=0)
        c, m = _binned(p[:, 0], p[:, 1], edges)
        ax.plot(c, m, "-o", color=color, ms=4, label=f"{name} (binned mean)")
    ax.axhline(float(variants["reappear_mean_random"].mean()), color=BASELINE_COLOR, ls="--", label="random decoders")
    ax.set_xscale("log")
    ax.set_ylim(*UNIT_YLIM)
    ax.set_xlabel("firing frequency (held-out rows)")
    ax.set_ylabel("reappearance probability at t")
    ax.set_title("(a) reappearance vs frequency")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    x = np.arange(len(variants))
    wbar = 0.2
    series = (
        ("frac_stable", "stable fraction", REAL_COLOR, 0.35, -1.5),
        ("ev_share_stable", "their EV share", REAL_COLOR, 1.0, -0.5),
        ("frac_stable_null", "null: stable fraction", NULL_COLOR, 0.35, 0.5),
        ("ev_share_stable_null", "null: EV share", NULL_COLOR, 1.0, 1.5),
    )
    for col, name, color, alpha, off in series:
        v = variants[col].to_numpy(dtype=float)
        lo, hi = variants.get(f"{col}_lo"), variants.get(f"{col}_hi")
        err = None
        if lo is not None and np.isfinite(lo.to_numpy(dtype=float)).any():
            err = np.vstack([v - lo.to_numpy(dtype=float), hi.to_numpy(dtype=float) - v])
            err = np.where(np.isfinite(err), err, 0.0)
        ax.bar(x + off * wbar, np.nan_to_num(v), wbar, color=color, alpha=alpha, label=name, yerr=err, capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels([_label(h, v, hooks) for h, v in zip(variants["hook"], variants["variant"])], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(*UNIT_YLIM)
    ax.set_ylabel("fraction of latents / share of EV")
    ax.set_title("(b) stable latents and their EV share")
    ax.legend(fontsize=8, ncol=2, loc="upper left")

    ax = axes[2]
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(variants), 1)))
    chance_drawn = False
    for color, (_, row) in zip(colors, variants.iterrows()):
        for role, ls in (("real", "-"), ("null", "--")):
            specs = [v for k, v in spectra.items() if k[:3] == (row["hook"], row["variant"], role) and len(v)]
            if not specs:
                continue
            r = min(len(s) for s in specs)
            mean = np.mean([np.asarray(s[:r]) ** 2 for s in specs], axis=0)
            ax.plot(np.arange(1, r + 1) / r, mean, ls=ls, color=color, lw=1.2,
                    label=_label(row["hook"], row["variant"], hooks).replace("\n", " ") if role == "real" else None)
        if np.isfinite(row.get("unstable_subspace_chance", np.nan)):
            ax.axhline(row["unstable_subspace_chance"], color=BASELINE_COLOR, ls=":", lw=1,
                       label="isotropic chance r/d" if not chance_drawn else None)
            chance_drawn = True
    ax.plot([], [], ls="--", color="0.3", label="null SAEs")
    ax.set_ylim(*UNIT_YLIM)
    ax.set_xlabel("principal angle rank / r")
    ax.set_ylabel("cos² of principal angle")
    ax.set_title("(c) unstable subspaces: principal angles")
    ax.legend(fontsize=7, loc="lower left", ncol=1)
    if title:
        fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig
