"""Has SAE training converged? The training trajectory, from the initialised SAE on.

The training run itself keeps snapshots (:func:`saesim.saes.training.train_sae` with
``snapshots``: the training SAE's state at fractions of its training samples,
fraction 0 being the initialised SAE before the first step) in the published SAE
folder (:data:`saesim.saes.training.SNAPSHOT_FILE`). This module reads them; it
trains nothing (no ``SAETrainer`` is built, no step is taken): an snapshot's
training SAE is rebuilt from its spec and its state loaded, then converted to
sae-lens's inference format exactly as ``train_sae`` publishes. Fraction 1.0 is
the published SAE itself.

Per snapshot and seed: explained variance, L0, dead fraction on the held-out rows
(as in ``metrics.json``), and **drift from initialisation** per latent,
``cos(W_dec,t[i], W_dec,0[i])`` (its median, quartiles, 10/90% quantiles and a
20-bin histogram over [-1, 1]). Per snapshot and seed pair: the stability metrics
of the table (``compare_decoders``). The same for the trained Gaussian null's SAEs
of the variant (``null``), whose pairs are the trained-null level at that point of
training; the random-decoder baseline (shape only) is the random level.

Memory: every decoder of every snapshot is held at once (seeds x fractions x
width x d float32, real and null: 3 x 5 x 1152 x 576 x 4 B = 40 MB for the
SmolLM2 default); pair comparisons are chunked by ``compare_decoders`` within
``memory_budget_mb``.
"""

from __future__ import annotations

import os
import shutil
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from saesim.errors import SaesimError
from saesim.registry.metrics import TABLE_METRICS

#: quality metrics of every snapshot, as named in evaluate_sae
QUALITY_METRICS = ("explained_variance", "l0", "dead_fraction")
#: quantiles of the per-latent drift cos kept per snapshot
DRIFT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
#: histogram bin edges of the per-latent drift cos
DRIFT_BINS = np.linspace(-1.0, 1.0, 21)


def _metric(result: dict, name: str) -> float:
    return float(TABLE_METRICS[name].value(result))


def weights_equal(a_dir: str | os.PathLike, b_dir: str | os.PathLike) -> bool:
    """True when two sae-lens folders hold the same tensors (names, dtypes, shapes, bits)."""
    from safetensors.numpy import load_file

    a = load_file(str(Path(a_dir) / "sae_weights.safetensors"))
    b = load_file(str(Path(b_dir) / "sae_weights.safetensors"))
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a
    )


def row_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a[i], b[i]) for every row (index-aligned); 0 where a row is zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    den = na * nb
    return np.divide((a * b).sum(1), den, out=np.zeros(len(a)), where=den > 0)


def drift_summary(cos: np.ndarray) -> dict[str, Any]:
    """Median, mean, quantiles and histogram of per-latent drift cosines."""
    q = np.quantile(cos, DRIFT_QUANTILES)
    hist, _ = np.histogram(np.clip(cos, -1.0, 1.0), bins=DRIFT_BINS)
    return {
        "drift_cos_median": float(np.median(cos)),
        "drift_cos_mean": float(np.mean(cos)),
        **{f"drift_cos_q{int(round(p * 100)):02d}": float(v) for p, v in zip(DRIFT_QUANTILES, q)},
        "drift_cos_hist": [int(h) for h in hist],
    }


def snapshot_sae(spec, state: Mapping[str, Any], folder: Path, device: str):
    """The sae-lens inference SAE of a snapshot: its training SAE rebuilt (not trained) from
    ``spec``, the snapshot's state loaded, saved in inference format to ``folder``, loaded."""
    from sae_lens import SAE

    from saesim.saes.training import build_training_sae, write_sorted_json

    d_in = int(state["W_dec"].shape[1])
    sae = build_training_sae(spec, d_in)
    sae.load_state_dict(dict(state))
    sae.save_inference_model(str(folder))
    write_sorted_json(folder / "cfg.json")
    return SAE.load_from_disk(str(folder), device=device)


def _seed_trajectory(store_path, spec, published: Path, fractions: Sequence[float], work_dir: Path):
    """(per-snapshot records, {fraction: W_dec}, {fraction: samples}) of one published SAE."""
    import torch
    from sae_lens import SAE

    from saesim.stores.activation_store import open_store
    from saesim.workflow.gpu import resolve_device
    from saesim.saes.evaluation import evaluate_sae
    from saesim.stores.rows import split_rows
    from saesim.saes.training import SAESpec, read_snapshots

    snaps = read_snapshots(published)
    missing = [f for f in fractions if f < 1 and f not in snaps]
    if missing:
        raise SaesimError(
            f"{published}: no training snapshots at fractions {missing} (it holds {sorted(snaps)}); "
            "retrain it with these snapshots (the training rule keeps them for the convergence variant)"
        )
    device = resolve_device(spec.device)
    spec = SAESpec(**{**spec.__dict__, "device": device})
    total = int(spec.training_samples)
    records, decoders, samples = [], {}, {}
    with open_store(store_path) as store:
        _, eval_mask = split_rows(store, spec)
        for f in fractions:
            if f < 1:
                folder = work_dir / f"f{f:g}"
                sae = snapshot_sae(spec, snaps[f][1], folder, device)
                samples[f] = snaps[f][0]
            else:
                sae = SAE.load_from_disk(str(published), device=device)
                samples[f] = -(-total // spec.batch_size) * spec.batch_size  # sae-lens steps while seen < total
            quality = evaluate_sae(sae, store, eval_mask)
            with torch.no_grad():
                decoders[f] = sae.W_dec.detach().to("cpu", torch.float32).numpy().copy()
            records.append({"fraction": f, "samples": samples[f], **{k: quality[k] for k in QUALITY_METRICS}})
            del sae
    for rec in records:
        rec.update(drift_summary(row_cos(decoders[rec["fraction"]], decoders[fractions[0]])))
    return records, decoders, samples


def _trajectories(role, store_path, specs, published, fractions, work_dir, memory_budget_mb):
    from saesim.similarity import compare_decoders

    seeds = sorted(specs)
    per_seed, decoders, samples = [], {}, {}
    for seed in seeds:
        recs, decs, samples = _seed_trajectory(store_path, specs[seed], Path(published[seed]), fractions, work_dir / f"{role}{seed}")
        per_seed += [{"role": role, "seed": seed, **r} for r in recs]
        decoders[seed] = decs
    per_pair = []
    for f in fractions:
        for a, b in combinations(seeds, 2):
            res = compare_decoders(decoders[a][f], decoders[b][f], memory_budget_mb=memory_budget_mb, with_baseline=False)
            per_pair.append({"role": role, "fraction": f, "seed_a": a, "seed_b": b, **{m: _metric(res, m) for m in TABLE_METRICS}})
    return per_seed, per_pair, samples


def measure_convergence(
    store_path: str | os.PathLike,
    specs: Mapping[int, Any],
    fractions: Sequence[float],
    work_dir: str | os.PathLike,
    *,
    published: Mapping[int, str | os.PathLike],
    baseline: dict | None = None,
    null: Mapping[str, Any] | None = None,
    memory_budget_mb: float = 1024,
) -> dict:
    """The training trajectory of every seed of a variant, read from its published SAEs' snapshots.

    ``specs`` maps seed labels to :class:`~saesim.saes.training.SAESpec`, ``published`` to
    the published SAE folders (with snapshots at every fraction below 1; 1.0 is the
    published SAE). ``baseline`` is a :func:`~saesim.similarity.random_decoder_baseline`
    result for the variant's shape; ``null`` (optional) is ``{"store", "specs",
    "published"}`` of the trained null's SAEs of the same variant. Fractions 0 and 1
    are always included. ``work_dir`` holds converted snapshots while this runs and
    is removed at the end.
    """
    if len(specs) < 2:
        raise SaesimError(f"{work_dir}: convergence needs at least two seeds, got {sorted(specs)}")
    fractions = sorted({float(f) for f in fractions} | {0.0, 1.0})
    work_dir = Path(work_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        per_seed, per_pair, samples = _trajectories("real", store_path, specs, published, fractions, work_dir, memory_budget_mb)
        if null is not None:
            if len(null["specs"]) < 2:
                raise SaesimError(f"{work_dir}: the null needs at least two seeds, got {sorted(null['specs'])}")
            s2, p2, _ = _trajectories("null", null["store"], null["specs"], null["published"], fractions, work_dir, memory_budget_mb)
            per_seed += s2
            per_pair += p2
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    spec0 = specs[min(specs)]
    return {
        "fractions": fractions,
        "samples": [samples[f] for f in fractions],
        "training_samples": spec0.training_samples,
        "batch_size": spec0.batch_size,
        "seeds": sorted(specs),
        "null_seeds": sorted(null["specs"]) if null is not None else [],
        "per_seed": per_seed,
        "per_pair": per_pair,
        "drift_bins": [float(x) for x in DRIFT_BINS],
        "baseline": None if baseline is None else {m: _metric(baseline, m) for m in TABLE_METRICS},
        "trained": False,  # read from the training run's snapshots; nothing was trained here
    }


#: drift columns of the convergence table (means over seeds of each seed's summary)
DRIFT_COLUMNS = ("drift_cos_median", "drift_cos_mean", "drift_cos_q10", "drift_cos_q90")


def convergence_table(result: dict, **labels: Any):
    """One row per fraction: mean/min/max over seed pairs of each stability metric, its
    random baseline, the null pairs' mean and the excess over it ((value - null) / (1 - null));
    mean/min/max over seeds of each quality metric and the null SAEs' mean; drift from
    initialisation (mean over seeds of each seed's median etc.), real and null."""
    import pandas as pd

    from saesim.registry.metrics import excess

    pairs = pd.DataFrame(result["per_pair"])
    seeds = pd.DataFrame(result["per_seed"])
    rows = []
    for fraction, samples in zip(result["fractions"], result["samples"]):
        row: dict[str, Any] = {**labels, "fraction": fraction, "samples": samples, "n_seeds": len(result["seeds"])}
        p = pairs[(pairs["fraction"] == fraction) & (pairs["role"] == "real")]
        pn = pairs[(pairs["fraction"] == fraction) & (pairs["role"] == "null")]
        row["n_pairs"] = len(p)
        for m in TABLE_METRICS:
            row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = p[m].mean(), p[m].min(), p[m].max()
            row[f"{m}_baseline"] = np.nan if result["baseline"] is None else result["baseline"][m]
            row[f"{m}_null"] = pn[m].mean() if len(pn) else np.nan
            row[f"{m}_excess_null"] = excess(row[f"{m}_mean"], row[f"{m}_null"])
        s = seeds[(seeds["fraction"] == fraction) & (seeds["role"] == "real")]
        sn = seeds[(seeds["fraction"] == fraction) & (seeds["role"] == "null")]
        for m in QUALITY_METRICS:
            row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = s[m].mean(), s[m].min(), s[m].max()
            row[f"{m}_null"] = sn[m].mean() if len(sn) else np.nan
        for m in DRIFT_COLUMNS:
            row[m] = s[m].mean()
            row[f"{m}_null"] = sn[m].mean() if len(sn) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
