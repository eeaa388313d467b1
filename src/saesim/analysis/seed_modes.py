"""Shared vs independent initialisation, side by side (stability or stabilization?).

One variant at one hook is trained under each of ``sae.seed_mode``'s settings for the
same seed labels: ``both`` (seed s sets the initialisation and the data order: the
experiment's published SAEs when its own mode is ``both``), ``data_only`` (one shared
initialisation from ``fixed_seed``, data orders differ) and ``init_only``
(initialisations differ, one data order). Every SAE keeps snapshots from fraction 0
(:func:`saesim.saes.training.train_sae` ``snapshots``), and each mode's trajectory is read
with :func:`saesim.analysis.convergence.measure_convergence`'s machinery: cross-seed stability,
drift from initialisation and quality at each snapshot.

Brzozowski & Chung (2026, "Ablating Archetypes") call agreement of runs that started
from one initialisation *stability* and agreement of independently initialised runs
*stabilization*: only the latter says training finds the same features. ``data_only``
starts at stability 1 (identical decoders at step 0); how far it stays above ``both``
at the end is how much of its agreement is the shared start.

Memory: as :mod:`saesim.analysis.convergence`, per mode (seeds x fractions decoders).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from saesim.errors import SaesimError
from saesim.registry.metrics import TABLE_METRICS

#: seed modes the comparison can run, in figure order (the config's target: saesim.workflow.config.snapshot_target)
MODES = ("both", "init_only", "data_only")


def mode_seed_pair(mode: str, seed: int, fixed_seed: int) -> tuple[int, int]:
    """``(init_seed, data_seed)`` of seed label ``seed`` under ``mode`` (as saesim.workflow.config.seed_pair)."""
    if mode == "both":
        return seed, seed
    if mode == "init_only":
        return seed, fixed_seed
    if mode == "data_only":
        return fixed_seed, seed
    raise SaesimError(f"seed mode must be one of {', '.join(MODES)}, got {mode!r}")


def measure_seed_modes(
    store_path: str | os.PathLike,
    specs: Mapping[str, Mapping[int, Any]],
    fractions: Sequence[float],
    work_dir: str | os.PathLike,
    *,
    published: Mapping[str, Mapping[int, str | os.PathLike]] | None = None,
    baseline: dict | None = None,
    memory_budget_mb: float = 1024,
) -> dict:
    """Each mode's trajectory. ``specs[mode][seed]`` are SAESpecs; a mode in ``published``
    reads those SAE folders (they must hold the snapshots), every other mode is trained here
    (under ``work_dir``, removed at the end) with snapshots at ``fractions`` below 1."""
    from saesim.analysis.convergence import _metric, _trajectories
    from saesim.saes.training import train_sae

    fractions = sorted({float(f) for f in fractions} | {0.0, 1.0})
    published = dict(published or {})
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    per_seed, per_pair, samples, trained = [], [], None, {}
    try:
        for mode, mode_specs in specs.items():
            if len(mode_specs) < 2:
                raise SaesimError(f"{work_dir}: seed mode {mode} needs at least two seeds, got {sorted(mode_specs)}")
            folders = published.get(mode)
            if folders is None:
                folders = {}
                for seed, spec in sorted(mode_specs.items()):
                    folders[seed] = work_dir / mode / f"seed{seed}"
                    m = train_sae(store_path, spec, folders[seed], snapshots=[f for f in fractions if f < 1])
                    print(f"{mode} seed {seed} (init {spec.init_seed}, data {spec.data_seed}): "
                          f"EV {m['explained_variance']:.3f}, L0 {m['l0']:.1f}", flush=True)
                trained[mode] = True
            s, p, samples = _trajectories(mode, store_path, mode_specs, folders, fractions, work_dir / f"read-{mode}", memory_budget_mb)
            for rec in s:
                spec = mode_specs[rec["seed"]]
                rec.update(init_seed=spec.init_seed, data_seed=spec.data_seed)
            per_seed += s
            per_pair += p
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return {
        "modes": list(specs),
        "trained_here": sorted(trained),
        "fractions": fractions,
        "samples": [samples[f] for f in fractions],
        "per_seed": per_seed,
        "per_pair": per_pair,
        "baseline": None if baseline is None else {m: _metric(baseline, m) for m in TABLE_METRICS},
    }


def seed_modes_table(result: dict, **labels: Any):
    """One row per (mode, fraction): stability over seed pairs (mean/min/max, random
    baseline), drift from initialisation and explained variance (means over seeds)."""
    import numpy as np
    import pandas as pd


    pairs = pd.DataFrame(result["per_pair"])
    seeds = pd.DataFrame(result["per_seed"])
    rows = []
    for mode in result["modes"]:
        for fraction, samples in zip(result["fractions"], result["samples"]):
            p = pairs[(pairs["role"] == mode) & (pairs["fraction"] == fraction)]
            s = seeds[(seeds["role"] == mode) & (seeds["fraction"] == fraction)]
            row: dict[str, Any] = {**labels, "seed_mode": mode, "fraction": fraction, "samples": samples,
                                   "n_seeds": len(s), "n_pairs": len(p)}
            for m in TABLE_METRICS:
                row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = p[m].mean(), p[m].min(), p[m].max()
                row[f"{m}_baseline"] = np.nan if result["baseline"] is None else result["baseline"][m]
            for m in ("drift_cos_median", "explained_variance", "l0", "dead_fraction"):
                row[m] = s[m].mean()
            rows.append(row)
    return pd.DataFrame(rows)
