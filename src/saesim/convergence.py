"""Has SAE training converged? Stability and quality at several points of training.

The seeds of one SAE variant are trained again, each exactly as its published
SAE was (:func:`saesim.training.train_sae` with the same spec), taking
snapshots of the weights at fractions of the training samples. Every snapshot
is evaluated on the held-out rows (explained variance, L0, dead fraction, as
in ``metrics.json``) and every pair of seeds is compared at every fraction
(mean max |cos| and Hungarian mean |cos| of the decoders,
:func:`saesim.similarity.compare_decoders`). The last snapshot (fraction 1.0)
is checked against the published SAE of its seed, tensor by tensor, bit for
bit: equality shows the snapshots come from the very training run that
produced the published SAEs.
"""

from __future__ import annotations

import os
import shutil
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import SaesimError
from .metrics import TABLE_METRICS

#: stability metrics of the convergence table: the table metrics of saesim.metrics (columns of pairs.csv)
STABILITY_METRICS = tuple(TABLE_METRICS)
#: quality metrics of every snapshot, as named in evaluate_sae
QUALITY_METRICS = ("explained_variance", "l0", "dead_fraction")


def _metric(result: dict, name: str) -> float:
    from .tables import STABILITY_METRICS as GETTERS

    return float(GETTERS[name](result))


def weights_equal(a_dir: str | os.PathLike, b_dir: str | os.PathLike) -> bool:
    """True when two sae-lens folders hold the same tensors (names, dtypes, shapes, bits)."""
    from safetensors.numpy import load_file

    a = load_file(str(Path(a_dir) / "sae_weights.safetensors"))
    b = load_file(str(Path(b_dir) / "sae_weights.safetensors"))
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a
    )


def train_with_snapshots(
    store_path: str | os.PathLike,
    spec,
    work_dir: str | os.PathLike,
    fractions: Sequence[float],
) -> tuple[dict[float, tuple[int, Path]], dict]:
    """Train one SAE with ``train_sae`` (published to ``work_dir/final``) and save a
    snapshot at each fraction as a sae-lens inference folder ``work_dir/f<fraction>``.

    Returns ``({fraction: (samples seen, folder)}, train_sae's metrics)``.
    """
    from .training import SAESpec, build_training_sae, resolve_device, train_sae, write_sorted_json

    work_dir = Path(work_dir)
    states: dict[float, tuple[int, dict[str, Any]]] = {}

    def grab(fraction: float, samples: int, sae) -> None:
        # a copy on the CPU; nothing of the live SAE or of any RNG is touched
        states[fraction] = (samples, {k: v.detach().to("cpu", copy=True) for k, v in sae.state_dict().items()})

    metrics = train_sae(store_path, spec, work_dir / "final", snapshot_fractions=fractions, on_snapshot=grab)
    missing = sorted(set(float(f) for f in fractions) - set(states))
    if missing:
        raise SaesimError(f"{work_dir}: training ended without snapshots at fractions {missing}")
    resolved = SAESpec(**{**spec.__dict__, "device": resolve_device(spec.device)})
    d_in = int(states[max(states)][1]["W_dec"].shape[1])
    out = {}
    for fraction, (samples, state) in sorted(states.items()):
        # the same conversion train_sae publishes with: an sae-lens training SAE
        # holding the snapshot's weights, saved in inference format
        sae = build_training_sae(resolved, d_in)
        sae.load_state_dict(state)
        folder = work_dir / f"f{fraction:g}"
        sae.save_inference_model(str(folder))
        write_sorted_json(folder / "cfg.json")
        out[fraction] = (samples, folder)
    return out, metrics


def measure_convergence(
    store_path: str | os.PathLike,
    specs: Mapping[int, Any],
    fractions: Sequence[float],
    work_dir: str | os.PathLike,
    *,
    published: Mapping[int, str | os.PathLike] | None = None,
    baseline: dict | None = None,
    memory_budget_mb: float = 1024,
) -> dict:
    """Snapshots of every seed's training, their quality and every seed pair's stability.

    ``specs`` maps seed labels to :class:`~saesim.training.SAESpec`; ``published``
    (optional) maps them to the published SAE folders the final snapshots are
    checked against; ``baseline`` is a :func:`~saesim.similarity.random_decoder_baseline`
    result for the variant's shape. ``work_dir`` holds the snapshots while this
    runs and is removed at the end.
    """
    from sae_lens import SAE

    from .activation_store import open_store
    from .checkpoints import load_sae_weights
    from .similarity import compare_decoders
    from .training import evaluate_sae, resolve_device, split_rows

    if len(specs) < 2:
        raise SaesimError(f"{work_dir}: convergence needs at least two seeds, got {sorted(specs)}")
    fractions = sorted({float(f) for f in fractions} | {1.0})
    seeds = sorted(specs)
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        snapshots: dict[int, dict[float, tuple[int, Path]]] = {}
        per_seed, checks = [], []
        for seed in seeds:
            spec = specs[seed]
            snaps, metrics = train_with_snapshots(store_path, spec, work_dir / f"seed{seed}", fractions)
            snapshots[seed] = snaps
            with open_store(store_path) as store:
                _, eval_mask = split_rows(store, spec)
                device = resolve_device(spec.device)
                for fraction, (samples, folder) in snaps.items():
                    quality = evaluate_sae(SAE.load_from_disk(str(folder), device=device), store, eval_mask)
                    per_seed.append({"fraction": fraction, "samples": samples, "seed": seed, **{k: quality[k] for k in QUALITY_METRICS}})
            final = snaps[1.0][1]
            check = {"seed": seed, "final_equals_run": weights_equal(final, work_dir / f"seed{seed}" / "final")}
            if published is not None:
                check["published"] = str(published[seed])
                check["final_equals_published"] = weights_equal(final, published[seed])
            checks.append(check)
            print(f"seed {seed}: {check}", flush=True)
        per_pair = []
        for fraction in fractions:
            decoders = {s: load_sae_weights(snapshots[s][fraction][1]).W_dec for s in seeds}
            for a, b in combinations(seeds, 2):
                res = compare_decoders(decoders[a], decoders[b], memory_budget_mb=memory_budget_mb, with_baseline=False)
                per_pair.append({"fraction": fraction, "seed_a": a, "seed_b": b, **{m: _metric(res, m) for m in STABILITY_METRICS}})
            del decoders
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    samples_at = {f: snapshots[seeds[0]][f][0] for f in fractions}
    spec0 = specs[seeds[0]]
    result: dict[str, Any] = {
        "fractions": fractions,
        "samples": [samples_at[f] for f in fractions],
        "training_samples": spec0.training_samples,
        "batch_size": spec0.batch_size,
        "seeds": seeds,
        "per_seed": per_seed,
        "per_pair": per_pair,
        "checks": checks,
        "final_equals_run": all(c["final_equals_run"] for c in checks),
        "baseline": None if baseline is None else {m: _metric(baseline, m) for m in STABILITY_METRICS},
    }
    if published is not None:
        result["final_equals_published"] = all(c["final_equals_published"] for c in checks)
    return result


def convergence_table(result: dict, **labels: Any):
    """One row per fraction: mean/min/max over seed pairs of each stability metric,
    over seeds of each quality metric, the random baseline and the final-snapshot check."""
    import pandas as pd

    pairs = pd.DataFrame(result["per_pair"])
    seeds = pd.DataFrame(result["per_seed"])
    rows = []
    for fraction, samples in zip(result["fractions"], result["samples"]):
        row: dict[str, Any] = {**labels, "fraction": fraction, "samples": samples,
                               "n_seeds": len(result["seeds"])}
        p = pairs[pairs["fraction"] == fraction]
        row["n_pairs"] = len(p)
        for m in STABILITY_METRICS:
            row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = p[m].mean(), p[m].min(), p[m].max()
            row[f"{m}_baseline"] = np.nan if result["baseline"] is None else result["baseline"][m]
        s = seeds[seeds["fraction"] == fraction]
        for m in QUALITY_METRICS:
            row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = s[m].mean(), s[m].min(), s[m].max()
        row["final_equals_published"] = result.get("final_equals_published")
        rows.append(row)
    return pd.DataFrame(rows)
