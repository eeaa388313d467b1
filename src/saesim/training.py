"""Train one SAE on an activation store with sae-lens, and evaluate it.

All SAE classes and the training loop are sae-lens's (``*TrainingSAE`` and
``SAETrainer``); this module only maps a config entry onto them, feeds batches
streamed from the store in a seeded order, and writes the checkpoint in
sae-lens's inference format (``cfg.json`` + ``sae_weights.safetensors``) plus
``metrics.json``.

Two seeds control an SAE: ``init_seed`` seeds torch before the SAE is built
(sae-lens configs have no seed field) and ``data_seed`` orders the batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .activation_store import ActivationStore, iter_shuffled_batches, open_store, producer_versions
from .errors import SaesimError

#: architecture name -> (sae-lens training config class, its sparsity parameter)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "standard": ("StandardTrainingSAEConfig", "l1_coefficient"),
    "topk": ("TopKTrainingSAEConfig", "k"),
    "batchtopk": ("BatchTopKTrainingSAEConfig", "k"),
    "jumprelu": ("JumpReLUTrainingSAEConfig", "l0_coefficient"),
    "matryoshka_batchtopk": ("MatryoshkaBatchTopKTrainingSAEConfig", "k"),
}


def sparsity_key(architecture: str) -> str:
    """The config key that sets an architecture's sparsity (``k``, ``l1_coefficient``, ...)."""
    if architecture not in ARCHITECTURES:
        raise SaesimError(f"unknown SAE architecture {architecture!r}; allowed: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture][1]


@dataclass(frozen=True)
class SAESpec:
    """Everything that determines one trained SAE."""

    architecture: str
    width: int
    sparsity: float  # k, l1_coefficient or l0_coefficient, by architecture
    init_seed: int
    data_seed: int
    lr: float = 3e-4
    training_samples: int = 200_000
    batch_size: int = 1024
    lr_warm_up_steps: int = 0
    lr_decay_steps: int = 0
    sparsity_warm_up_steps: int = 0
    jumprelu_init_threshold: float = 0.01
    jumprelu_bandwidth: float = 0.05
    matryoshka_widths: tuple[int, ...] = ()
    eval_rows: int = 8192
    exclude_positions: tuple[int, ...] = ()
    exclude_norm_above: float | None = None  # rows with norm > this x the median row norm
    b_dec_init: str = "zeros"  # zeros (sae-lens's default) or mean (of the training rows)
    threads: int = 1
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["matryoshka_widths"] = list(self.matryoshka_widths)
        d["exclude_positions"] = list(self.exclude_positions)
        return d


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_training_sae(spec: SAESpec, d_in: int):
    """A freshly initialised sae-lens training SAE, its weights drawn from ``init_seed``."""
    import sae_lens
    import torch

    cfg_name, key = ARCHITECTURES[spec.architecture]
    kwargs: dict[str, Any] = {"d_in": d_in, "d_sae": spec.width, "device": spec.device}
    if key == "k":
        kwargs["k"] = int(spec.sparsity) if spec.architecture == "topk" else float(spec.sparsity)
    else:
        kwargs[key] = float(spec.sparsity)
    if spec.architecture == "standard":
        kwargs["l1_warm_up_steps"] = spec.sparsity_warm_up_steps
    if spec.architecture == "jumprelu":
        kwargs["l0_warm_up_steps"] = spec.sparsity_warm_up_steps
        kwargs["jumprelu_init_threshold"] = spec.jumprelu_init_threshold
        kwargs["jumprelu_bandwidth"] = spec.jumprelu_bandwidth
    if spec.architecture == "matryoshka_batchtopk":
        widths = list(spec.matryoshka_widths) or default_matryoshka_widths(spec.width)
        if widths[-1] != spec.width:
            widths.append(spec.width)
        kwargs["matryoshka_widths"] = widths
    kwargs.update(spec.extra)
    cfg = getattr(sae_lens, cfg_name)(**kwargs)
    torch.manual_seed(spec.init_seed)
    return getattr(sae_lens, cfg_name.removesuffix("Config"))(cfg)


def default_matryoshka_widths(width: int) -> list[int]:
    """Nested prefixes at 1/8, 1/4, 1/2 and all of the dictionary."""
    return sorted({max(1, width // 8), max(1, width // 4), max(1, width // 2), width})


def torch_batches(store: ActivationStore, spec: SAESpec, row_mask: np.ndarray | None) -> Iterator[Any]:
    import torch

    for batch in iter_shuffled_batches(store, spec.batch_size, seed=spec.data_seed, row_mask=row_mask):
        yield torch.from_numpy(batch)


def row_norms(store: ActivationStore, chunk_rows: int = 8192) -> np.ndarray:
    """L2 norm of every activation row, streamed in chunks."""
    norms = np.empty(store.n_rows, dtype=np.float64)
    for start, block in store.iter_chunks(chunk_rows):
        norms[start : start + len(block)] = np.linalg.norm(block.astype(np.float64), axis=1)
    return norms


def norm_outlier_rows(norms: np.ndarray, eligible: np.ndarray, factor: float) -> np.ndarray:
    """Rows whose norm exceeds ``factor`` x the median norm of the eligible rows.

    Mid-depth residual streams of language models carry "massive activations"
    (Sun et al. 2024) on a handful of tokens, with norms 10-100x the median;
    a few such rows can hold most of the variance and dominate the MSE.
    """
    return norms > factor * np.median(norms[eligible])


def mean_row(store: ActivationStore, row_mask: np.ndarray, chunk_rows: int = 8192) -> np.ndarray:
    """Mean of the rows selected by ``row_mask``, accumulated in float64 chunk by chunk."""
    total = np.zeros(store.d, dtype=np.float64)
    for start, block in store.iter_chunks(chunk_rows):
        total += block[row_mask[start : start + len(block)]].astype(np.float64).sum(0)
    return total / max(1, int(row_mask.sum()))


def eligible_rows(store: ActivationStore, exclude_positions=(), exclude_norm_above: float | None = None) -> np.ndarray:
    """Mask of the rows SAE training and evaluation may use: without the excluded positions
    (e.g. BOS; token stores only) and, with ``exclude_norm_above``, without norm outliers."""
    eligible = np.ones(store.n_rows, dtype=bool)
    if exclude_positions and store.has_tokens:
        eligible &= ~np.isin(store.row_array("positions"), list(exclude_positions))
    if exclude_norm_above is not None:
        eligible &= ~norm_outlier_rows(row_norms(store), eligible, exclude_norm_above)
    return eligible


def split_rows(store: ActivationStore, spec: SAESpec) -> tuple[np.ndarray, np.ndarray]:
    """Masks of training rows and held-out evaluation rows.

    The first ``eval_rows`` eligible rows are held out for evaluation, the same
    for every SAE on this store; excluded positions (e.g. BOS) and, with
    ``exclude_norm_above``, norm outliers are in neither.
    """
    eligible = eligible_rows(store, spec.exclude_positions, spec.exclude_norm_above)
    idx = np.flatnonzero(eligible)
    n_eval = min(spec.eval_rows, len(idx) // 5)
    eval_mask = np.zeros_like(eligible)
    eval_mask[idx[:n_eval]] = True
    return eligible & ~eval_mask, eval_mask


def evaluate_sae(sae, store: ActivationStore, eval_mask: np.ndarray, chunk_rows: int = 4096) -> dict[str, float]:
    """Explained variance, MSE, L0 and dead fraction of an inference SAE on held-out rows."""
    import torch

    n = 0
    sq_err = 0.0
    l0_sum = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    sums = None
    sq_sums = None
    with torch.no_grad():
        for start, block in store.iter_chunks(chunk_rows):
            block = block[eval_mask[start : start + len(block)]]
            if len(block) == 0:
                continue
            x = torch.from_numpy(block).to(sae.device)
            z = sae.encode(x)
            x_hat = sae.decode(z)
            sq_err += float(((x_hat - x) ** 2).sum())
            active = z != 0
            l0_sum += float(active.sum())
            fired |= active.any(dim=0).cpu()
            xs = x.double().sum(0)
            xss = (x.double() ** 2).sum(0)
            sums = xs if sums is None else sums + xs
            sq_sums = xss if sq_sums is None else sq_sums + xss
            n += len(block)
    if n == 0:
        raise SaesimError(f"{store.path}: no evaluation rows")
    total_var = float((sq_sums - sums**2 / n).sum())
    return {
        "explained_variance": 1.0 - sq_err / total_var,
        "mse": sq_err / (n * store.d),
        "l0": l0_sum / n,
        "dead_fraction": float((~fired).float().mean()),
        "eval_rows": n,
    }


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


COMPLETE_MARKER = ".complete"


def latest_checkpoint(resume_dir: Path | None) -> Path | None:
    """The newest finished sae-lens trainer checkpoint under ``resume_dir`` (None if none).

    sae-lens writes checkpoints non-atomically; a checkpoint counts only once our
    callback has dropped its completion marker after sae-lens finished writing it.
    """
    if resume_dir is None or not resume_dir.is_dir():
        return None
    done = [p for p in resume_dir.iterdir() if p.is_dir() and p.name.isdigit() and (p / COMPLETE_MARKER).exists()]
    return max(done, key=lambda p: int(p.name)) if done else None


def train_sae(
    store_path: str | os.PathLike,
    spec: SAESpec,
    out_dir: str | os.PathLike,
    *,
    resume_dir: str | os.PathLike | None = None,
    n_checkpoints: int = 0,
) -> dict:
    """Train one SAE and publish ``out_dir`` atomically (``cfg.json``, weights, ``metrics.json``).

    With ``resume_dir`` and ``n_checkpoints > 0``, sae-lens writes that many
    trainer checkpoints (weights, optimiser, schedulers, counters) under
    ``resume_dir`` during training, and a rerun after a kill continues from the
    newest complete one; the batch stream is replayed to the same position, so
    the result equals an uninterrupted run bit for bit. ``resume_dir`` must lie
    outside ``out_dir`` (Snakemake deletes a job's outputs before it starts) and
    is removed once the SAE is published.
    """
    import torch
    from sae_lens import SAE, LoggingConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig

    out_dir = Path(out_dir)
    resume_dir = Path(resume_dir) if resume_dir is not None else None
    torch.set_num_threads(spec.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(spec.device)
    spec = SAESpec(**{**spec.__dict__, "device": device})
    with open_store(store_path) as store:
        if spec.width < 1:
            raise SaesimError(f"{out_dir}: SAE width must be positive, got {spec.width}")
        if ARCHITECTURES[spec.architecture][1] == "k" and spec.sparsity >= spec.width:
            raise SaesimError(f"{out_dir}: k={spec.sparsity} must be smaller than the width {spec.width}")
        train_mask, eval_mask = split_rows(store, spec)
        sae = build_training_sae(spec, store.d)
        if spec.b_dec_init == "mean":
            # Start the decoder bias at the data mean (Bricken et al. 2023 use the
            # geometric median): residual streams have a large shared offset that
            # otherwise wins every TopK slot for a few latents and kills the rest.
            sae.b_dec.data.copy_(torch.from_numpy(mean_row(store, train_mask)).to(sae.b_dec.dtype))
        elif spec.b_dec_init != "zeros":
            raise SaesimError(f"{out_dir}: b_dec_init must be 'zeros' or 'mean', got {spec.b_dec_init!r}")
        trainer_cfg = SAETrainerConfig(
            total_training_samples=spec.training_samples,
            train_batch_size_samples=spec.batch_size,
            lr=spec.lr,
            lr_end=spec.lr / 10 if spec.lr_decay_steps else spec.lr,
            lr_warm_up_steps=spec.lr_warm_up_steps,
            lr_decay_steps=spec.lr_decay_steps,
            device=device,
            logger=LoggingConfig(log_to_wandb=False),
            dead_feature_window=max(1, min(1000, spec.training_samples // spec.batch_size // 4)),
            feature_sampling_window=max(1, min(2000, spec.training_samples // spec.batch_size // 2)),
            n_checkpoints=n_checkpoints if resume_dir is not None else 0,
            checkpoint_path=str(resume_dir) if resume_dir is not None else None,
        )
        batches = torch_batches(store, spec, train_mask)

        def mark_complete(checkpoint_path=None):
            if checkpoint_path is not None:
                (Path(checkpoint_path) / COMPLETE_MARKER).write_text("ok")

        trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=batches, save_checkpoint_fn=mark_complete)
        resumed_from = latest_checkpoint(resume_dir)
        if resumed_from is not None:
            sae.load_weights_from_checkpoint(resumed_from)
            trainer.load_trainer_state(resumed_from)
            trainer.checkpoint_thresholds = [t for t in trainer.checkpoint_thresholds if t >= trainer.n_training_samples]
            # sae-lens checkpoints inside a step, before it counts that step: the
            # step counter to continue from is the number of batches consumed.
            trainer.n_training_steps = trainer.n_training_samples // spec.batch_size
            for _ in range(trainer.n_training_steps):  # replay the batch stream to where it stopped
                next(batches)
            print(f"resuming from {resumed_from} at {trainer.n_training_samples} samples", flush=True)
        started = time.perf_counter()
        trained = trainer.fit()
        train_seconds = time.perf_counter() - started

        for stale in out_dir.parent.glob(f"{out_dir.name}.partial-*"):  # left by a killed job
            shutil.rmtree(stale, ignore_errors=True)
        tmp = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
        tmp.mkdir(parents=True)
        try:
            trained.save_inference_model(str(tmp))
            inference = SAE.load_from_disk(str(tmp), device=device)
            quality = evaluate_sae(inference, store, eval_mask)
            weights_file = tmp / "sae_weights.safetensors"
            metrics = {
                **quality,
                "architecture": spec.architecture,
                "width": spec.width,
                "sparsity_key": ARCHITECTURES[spec.architecture][1],
                "sparsity": spec.sparsity,
                "init_seed": spec.init_seed,
                "data_seed": spec.data_seed,
                "training_seconds": train_seconds,
                "train_rows": int(train_mask.sum()),
                "resumed_from_samples": int(resumed_from.name) if resumed_from is not None else None,
                "spec": spec.to_dict(),
                "store": str(store_path),
                "store_content_hash": store.content_hash,
                "weights_sha256": file_sha256(weights_file),
                "versions": producer_versions(),
            }
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    return metrics
