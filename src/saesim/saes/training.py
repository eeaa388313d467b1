"""Train one SAE on an activation store with sae-lens.

All SAE classes and the training loop are sae-lens's (``*TrainingSAE`` and
``SAETrainer``, found through sae-lens's registry); this module only maps a config
entry onto them, feeds batches streamed from the store in a seeded order, and writes
the SAE in sae-lens's inference format (``cfg.json`` + ``sae_weights.safetensors``)
plus ``metrics.json``. :func:`train_sae` reads in four steps: check (the request and
spec), resume (a fresh trainer, or one continued from a trainer checkpoint), fit
(sae-lens's loop, watched for snapshots and divergence) and publish (the folder,
atomically). The rows come from :mod:`saesim.stores.rows`, the quality numbers from
:mod:`saesim.saes.evaluation`.

Two seeds control an SAE: ``init_seed`` seeds torch before the SAE is built
(sae-lens configs have no seed field) and ``data_seed`` orders the batches.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from saesim.saes import architectures
from saesim.stores.activation_store import ActivationStore, iter_shuffled_batches, open_store, producer_versions
from saesim.errors import SaesimError
from saesim.hashes import file_sha256
from saesim.workflow.gpu import resolve_device
from saesim.saes.evaluation import evaluate_sae
from saesim.stores.rows import mean_row, split_rows


def sparsity_key(architecture: str) -> str:
    """The config key that sets an architecture's sparsity (``k``, ``l1_coefficient``, ...)."""
    return architectures.get(architecture).sparsity_key


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
    exclude_positions: tuple[int, ...] = (0,)  # token positions left out (0: BOS); stores without tokens ignore it
    exclude_norm_above: float | None = None  # rows with norm > this x the median row norm
    b_dec_init: str = "zeros"  # zeros (sae-lens's default) or mean (of the training rows)
    threads: int = 1
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)
    freeze: str | None = None  # "decoder": W_dec stays at its initialisation (frozen-dictionary SAE)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["matryoshka_widths"] = list(self.matryoshka_widths)
        d["exclude_positions"] = list(self.exclude_positions)
        if d["freeze"] is None:  # SAEs without it keep the keys (and trained caches) they had
            del d["freeze"]
        return d


def build_training_sae(spec: SAESpec, d_in: int):
    """A freshly initialised sae-lens training SAE, its weights drawn from ``init_seed``."""
    import torch
    from sae_lens.registry import get_sae_training_class

    arch = architectures.get(spec.architecture)
    kwargs: dict[str, Any] = {"d_in": d_in, "d_sae": spec.width, "device": spec.device}
    kwargs[arch.sparsity_key] = int(spec.sparsity) if arch.integer_k else float(spec.sparsity)
    kwargs.update(arch.training_kwargs(spec))
    kwargs.update(spec.extra)
    sae_class, config_class = get_sae_training_class(arch.sae_lens_architecture)
    cfg = config_class(**kwargs)
    torch.manual_seed(spec.init_seed)
    return sae_class(cfg)


def torch_batches(store: ActivationStore, spec: SAESpec, row_mask: np.ndarray | None) -> Iterator[Any]:
    import torch

    for batch in iter_shuffled_batches(store, spec.batch_size, seed=spec.data_seed, row_mask=row_mask):
        yield torch.from_numpy(batch)


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


RESUME_KEY_FILE = "key.json"

#: the modules beside this one whose code decides a trained SAE (rows, batches, evaluation)
#: the modules besides this one whose code decides a trained SAE (hashed into the resume key)
TRAINING_MODULES = ("saesim.stores.activation_store", "saesim.stores.rows", "saesim.saes.evaluation")


def resume_key(spec: SAESpec, store: ActivationStore) -> dict:
    """Everything that determines the SAE a resume checkpoint belongs to: the full
    training spec, the store's content, the package versions and this library's code."""
    code = hashlib.sha256()
    for name in (__name__, *TRAINING_MODULES):
        module = Path(importlib.import_module(name).__file__)
        code.update(module.name.encode() + b"\0" + module.read_bytes())
    return {
        "spec": spec.to_dict(),
        "store_content_hash": store.content_hash,
        "versions": producer_versions(),
        "code_sha256": code.hexdigest(),
    }


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def key_differences(old: Any, new: dict) -> list[str]:
    """``key: old != new`` for every entry of two resume keys that differs."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '(absent)')!r} != {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def claim_resume_dir(resume_dir: Path, key: dict, write_key: bool) -> None:
    """Keep ``resume_dir`` only if its key file says it was made for exactly ``key``;
    otherwise remove it with a log line. Then (``write_key``) record ``key`` in it."""
    if resume_dir.exists():
        try:
            stored = json.loads((resume_dir / RESUME_KEY_FILE).read_text())
            diffs = key_differences(stored, key)
            reason = f"made for a different SAE ({'; '.join(diffs[:5])}{'; ...' if len(diffs) > 5 else ''})" if diffs else None
        except FileNotFoundError:
            reason = f"it has no {RESUME_KEY_FILE}"
        except (OSError, ValueError) as e:
            reason = f"its {RESUME_KEY_FILE} is unreadable ({type(e).__name__})"
        if reason is not None:
            print(f"discarding resume checkpoints {resume_dir}: {reason}", flush=True)
            shutil.rmtree(resume_dir)
    if write_key:
        resume_dir.mkdir(parents=True, exist_ok=True)
        tmp = resume_dir / f"{RESUME_KEY_FILE}.partial-{os.getpid()}"
        tmp.write_text(json.dumps(key, indent=2, sort_keys=True))
        os.replace(tmp, resume_dir / RESUME_KEY_FILE)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (published files are never changed in place), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _publish_dir(tmp: Path, out_dir: Path) -> None:
    """Put a finished folder in place of ``out_dir`` (whatever was there goes)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out_dir)


def restore_trained(cache_dir: Path, key: dict, out_dir: Path, before_restore: Callable[[], Any] | None = None) -> dict | None:
    """Publish the SAE kept in ``cache_dir`` as ``out_dir`` if it was trained for exactly ``key``.

    Returns its metrics, or None (nothing published) when the cache is absent, was made for
    another key, or its weights no longer match the sha256 recorded in its metrics.
    ``before_restore`` is called once the key matches, before anything is published (the
    store checks: it raises to stop).
    """
    try:
        if key_differences(json.loads((cache_dir / RESUME_KEY_FILE).read_text()), key):
            return None
        metrics = json.loads((cache_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if before_restore is not None:
        before_restore()
    tmp = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for f in sorted(cache_dir.iterdir()):
            if f.name != RESUME_KEY_FILE:
                _link_or_copy(f, tmp / f.name)
        if file_sha256(tmp / "sae_weights.safetensors") != metrics.get("weights_sha256"):
            print(f"ignoring {cache_dir}: its weights differ from the sha256 in its metrics.json", flush=True)
            shutil.rmtree(tmp)
            return None
        _publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metrics


#: stores this process checked with :func:`store_checked_unchanged`: (path, size, mtime, hash) -> True
_CHECKED_STORES: dict[tuple, bool] = {}


def store_checked_unchanged(store: ActivationStore) -> None:
    """:func:`saesim.stores.activation_store.check_store_unchanged`, once per store file and process
    (a job restoring several seeds from one store reads it once)."""
    from saesim.stores.activation_store import check_store_unchanged

    st = Path(store.path).stat()
    ident = (str(Path(store.path).resolve()), st.st_size, st.st_mtime_ns, store.content_hash)
    if ident not in _CHECKED_STORES:
        check_store_unchanged(store)
        _CHECKED_STORES[ident] = True


def remember_trained(cache_dir: Path, key: dict, out_dir: Path) -> None:
    """Keep hard links to a published SAE in ``cache_dir`` with its key, replacing what was there."""
    tmp = cache_dir.with_name(f"{cache_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in sorted(out_dir.iterdir()):
        _link_or_copy(f, tmp / f.name)
    (tmp / RESUME_KEY_FILE).write_text(json.dumps(key, indent=2, sort_keys=True))
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.replace(tmp, cache_dir)


def checkpoint_manifest(checkpoint: Path) -> dict[str, str]:
    """sha256 of every file sae-lens wrote into a trainer checkpoint."""
    return {p.name: file_sha256(p) for p in sorted(checkpoint.iterdir()) if p.is_file() and p.name != COMPLETE_MARKER}


def verify_checkpoint(checkpoint: Path) -> None:
    """Raise ValueError unless the checkpoint's files are those its completion marker lists."""
    manifest = json.loads((checkpoint / COMPLETE_MARKER).read_text())
    if not isinstance(manifest, dict) or checkpoint_manifest(checkpoint) != manifest:
        raise ValueError("its files differ from those recorded when it was written")


def write_sorted_json(path: Path) -> None:
    """Rewrite a JSON file with sorted keys (atomically), so equal content gives equal bytes."""
    obj = json.loads(path.read_text())
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def nonfinite_tensors(module) -> list[str]:
    """Names of the floating-point tensors of a module's state dict that hold NaN or inf."""
    import torch

    return [
        name
        for name, t in module.state_dict().items()
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


#: how often (in steps) training checks its accumulated loss for NaN/inf (each check syncs the device)
#: how often (in steps) training checks its accumulated loss for NaN/inf (each check syncs the device)
DIVERGENCE_CHECK_STEPS = 100


@dataclass(frozen=True)
class TrainingRun:
    """One SAE being trained by :func:`train_sae`: its spec (device resolved), the open store and
    its row split, the folder it is published as, and where its resume checkpoints go."""

    spec: SAESpec
    store: ActivationStore
    store_path: str | os.PathLike
    out_dir: Path
    train_mask: np.ndarray
    eval_mask: np.ndarray
    resume_dir: Path | None
    n_checkpoints: int
    snapshots: list[float]  # fractions kept in the published folder, sorted (train_sae's ``snapshots``)

    @property
    def writes_checkpoints(self) -> bool:
        return self.resume_dir is not None and self.n_checkpoints > 0


# ---- check: a request no training can satisfy is refused before any work ---------------


def check_request(
    spec: SAESpec, out_dir: Path, snapshot_fractions: Sequence[float], on_snapshot, resume_dir: Path | None, snapshots: Sequence[float]
) -> tuple[list[float], list[float]]:
    """The fractions for ``on_snapshot`` and those kept in the published folder, each sorted;
    :class:`SaesimError` naming ``out_dir`` for a request no training can satisfy."""
    if spec.training_samples < spec.batch_size:
        raise SaesimError(
            f"{out_dir}: sae.training.training_samples={spec.training_samples} is smaller than "
            f"sae.training.batch_size={spec.batch_size}: not one full training step"
        )
    pending = sorted({float(f) for f in snapshot_fractions})
    if pending and (pending[0] <= 0 or pending[-1] > 1):
        raise SaesimError(f"{out_dir}: snapshot fractions must lie in (0, 1], got {pending}")
    if pending and (on_snapshot is None or resume_dir is not None):
        raise SaesimError(f"{out_dir}: snapshots need an on_snapshot callback and a run from the start (no resume_dir)")
    kept = sorted({float(f) for f in snapshots})
    if kept and (kept[0] < 0 or kept[-1] >= 1):
        raise SaesimError(f"{out_dir}: snapshots must lie in [0, 1) (1.0 is the published SAE), got {kept}")
    return pending, kept


def check_spec(spec: SAESpec, out_dir: Path) -> None:
    """:class:`SaesimError` naming ``out_dir`` for a spec sae-lens cannot train as asked."""
    if spec.width < 1:
        raise SaesimError(f"{out_dir}: SAE width must be positive, got {spec.width}")
    if sparsity_key(spec.architecture) == "k" and spec.sparsity >= spec.width:
        raise SaesimError(f"{out_dir}: k={spec.sparsity} must be smaller than the width {spec.width}")
    if spec.b_dec_init not in ("zeros", "mean"):
        raise SaesimError(f"{out_dir}: b_dec_init must be 'zeros' or 'mean', got {spec.b_dec_init!r}")
    if spec.freeze not in (None, "decoder"):
        raise SaesimError(f"{out_dir}: freeze must be 'decoder' (or absent), got {spec.freeze!r}")


# ---- resume: start fresh or continue from the newest usable trainer checkpoint ----------


def training_key(spec: SAESpec, store: ActivationStore, snapshots: list[float]) -> dict:
    """:func:`resume_key`, plus the kept snapshot fractions (the published folder holds them:
    a cached SAE without them is another SAE)."""
    key = resume_key(spec, store)
    if snapshots:
        key["snapshots"] = snapshots
    return key


def prepare_resume_dir(run: TrainingRun, key: dict) -> None:
    """Keep ``run.resume_dir`` only if made for ``key`` (:func:`claim_resume_dir`); resuming reuses
    work keyed by the store's content hash, so a store with checkpoints is checked first."""
    if run.resume_dir is None:
        return
    if latest_checkpoint(run.resume_dir) is not None:
        store_checked_unchanged(run.store)
    claim_resume_dir(run.resume_dir, key, write_key=run.n_checkpoints > 0)


def trainer_config(run: TrainingRun):
    """sae-lens's trainer config for ``run``: schedule from the spec, checkpoints into ``resume_dir``."""
    from sae_lens import LoggingConfig
    from sae_lens.config import SAETrainerConfig

    spec = run.spec
    steps = spec.training_samples // spec.batch_size
    return SAETrainerConfig(
        total_training_samples=spec.training_samples,
        train_batch_size_samples=spec.batch_size,
        lr=spec.lr,
        lr_end=spec.lr / 10 if spec.lr_decay_steps else spec.lr,
        lr_warm_up_steps=spec.lr_warm_up_steps,
        lr_decay_steps=spec.lr_decay_steps,
        device=spec.device,
        logger=LoggingConfig(log_to_wandb=False),
        dead_feature_window=max(1, min(1000, steps // 4)),
        feature_sampling_window=max(1, min(2000, steps // 2)),
        n_checkpoints=run.n_checkpoints if run.resume_dir is not None else 0,
        checkpoint_path=str(run.resume_dir) if run.resume_dir is not None else None,
    )


def mark_checkpoint_complete(checkpoint_path=None) -> None:
    """sae-lens's ``save_checkpoint_fn``: drop the completion marker into a checkpoint it has
    finished writing; the marker lists the sha256 of every file, so a damaged checkpoint is recognised."""
    if checkpoint_path is not None:
        marker = Path(checkpoint_path) / COMPLETE_MARKER
        tmp = marker.with_name(f"{COMPLETE_MARKER}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(checkpoint_manifest(Path(checkpoint_path)), indent=2, sort_keys=True))
        os.replace(tmp, marker)


def fresh_trainer(run: TrainingRun, trainer_cfg):
    """A freshly initialised SAE in its sae-lens trainer, fed the batch stream from the start."""
    import torch
    from sae_lens import SAETrainer

    sae = build_training_sae(run.spec, run.store.d)
    if run.spec.b_dec_init == "mean":
        # Start the decoder bias at the data mean (Bricken et al. 2023 use the
        # geometric median): residual streams have a large shared offset that
        # otherwise wins every TopK slot for a few latents and kills the rest.
        sae.b_dec.data.copy_(torch.from_numpy(mean_row(run.store, run.train_mask)).to(sae.b_dec.dtype))
    if run.spec.freeze == "decoder":
        # a frozen dictionary (Korznikov et al. 2026): no gradient, so the optimiser
        # (built by the trainer from the parameters) never moves W_dec
        sae.W_dec.requires_grad_(False)
    batches = torch_batches(run.store, run.spec, run.train_mask)
    return SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=batches, save_checkpoint_fn=mark_checkpoint_complete)


def load_checkpoint(trainer, checkpoint: Path) -> str | None:
    """Load a trainer checkpoint into ``trainer``; None, or the log line that discards it."""
    try:
        verify_checkpoint(checkpoint)
        trainer.sae.load_weights_from_checkpoint(checkpoint)
        trainer.load_trainer_state(checkpoint)
    except Exception as e:  # noqa: BLE001 - any failure to load means: do not use it
        cause = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        return f"discarding unloadable resume checkpoint {checkpoint}: {cause}"
    return None


def snapshots_before(run: TrainingRun, samples: int, checkpoint: Path) -> tuple[dict, str | None]:
    """The kept snapshots taken by ``samples`` (reloaded from ``run.resume_dir``); or ``{}`` and
    the log line that discards ``checkpoint`` when one of them is unreadable."""
    taken: dict[float, tuple[int, dict]] = {}
    for f in run.snapshots:
        if f * run.spec.training_samples <= samples:
            try:
                taken[f] = load_snapshot_state(run.resume_dir / snapshot_name(f))
            except Exception as e:  # noqa: BLE001
                return {}, f"discarding resume checkpoint {checkpoint}: its snapshot at {f:g} is unreadable ({type(e).__name__})"
    return taken, None


def continue_from_checkpoint(trainer, batch_size: int) -> None:
    """Set a trainer loaded from a checkpoint to go on where it stopped: the checkpoints still to
    write, the step counter, and its batch stream replayed to the same position."""
    trainer.checkpoint_thresholds = [t for t in trainer.checkpoint_thresholds if t >= trainer.n_training_samples]
    # sae-lens checkpoints inside a step, before it counts that step: the
    # step counter to continue from is the number of batches consumed.
    trainer.n_training_steps = trainer.n_training_samples // batch_size
    for _ in range(trainer.n_training_steps):
        next(trainer.data_provider)


def resume(run: TrainingRun, trainer_cfg) -> tuple[Any, Path | None, dict[float, tuple[int, dict]]]:
    """The trainer to fit, the checkpoint it continues from (None: from the start) and the kept
    snapshots taken before it. Checkpoints that fail to load are removed with a log line, and
    the next newest is tried."""
    trainer = fresh_trainer(run, trainer_cfg)
    while (candidate := latest_checkpoint(run.resume_dir)) is not None:
        problem = load_checkpoint(trainer, candidate)
        taken: dict[float, tuple[int, dict]] = {}
        if problem is None:
            taken, problem = snapshots_before(run, trainer.n_training_samples, candidate)
        if problem is not None:
            print(problem, flush=True)
            shutil.rmtree(candidate)
            trainer = fresh_trainer(run, trainer_cfg)  # loading may have changed part of the state
            continue
        continue_from_checkpoint(trainer, run.spec.batch_size)
        print(f"resuming from {candidate} at {trainer.n_training_samples} samples", flush=True)
        return trainer, candidate, taken
    return trainer, None, {}


# ---- fit: sae-lens's training loop, watched step by step ---------------------------------


def diverged(run: TrainingRun, cause: str) -> SaesimError:
    """The error for a run whose training diverged; its resume checkpoints (which lead to the
    same divergence) are removed."""
    if run.resume_dir is not None:
        shutil.rmtree(run.resume_dir, ignore_errors=True)
    return SaesimError(
        f"{run.out_dir}: training diverged ({cause}) with sae.training.lr={run.spec.lr}; nothing was published"
    )


class WatchedStep:
    """sae-lens's ``trainer.step`` wrapped: takes the kept snapshots and calls ``on_snapshot``
    at their fractions, and accumulates non-finite losses on the device, looked at every
    :data:`DIVERGENCE_CHECK_STEPS` steps (as sae-lens's progress bar does), not every step."""

    def __init__(self, run: TrainingRun, trainer, taken: dict, pending: list[float], on_snapshot) -> None:
        import torch

        self.run, self.trainer, self.taken = run, trainer, taken
        self.pending, self.on_snapshot = pending, on_snapshot
        self.todo = [f for f in run.snapshots if f not in taken]
        self.sae_step = trainer.step
        self.nonfinite_loss = torch.zeros((), dtype=torch.bool, device=torch.device(run.spec.device))

    def take(self, fraction: float) -> None:
        """Snapshot the live SAE: a copy on the CPU; nothing of the SAE or of any RNG is touched."""
        trainer = self.trainer
        state = {k: v.detach().to("cpu", copy=True) for k, v in trainer.sae.state_dict().items()}
        self.taken[fraction] = (trainer.n_training_samples, state)
        if self.run.writes_checkpoints:
            save_snapshot_state(self.run.resume_dir / snapshot_name(fraction), trainer.n_training_samples, state)

    def __call__(self, batch):
        import torch

        trainer, todo, total = self.trainer, self.todo, self.run.spec.training_samples
        if todo and todo[0] == 0 and trainer.n_training_samples == 0:  # the initialised SAE
            self.take(todo.pop(0))
        out = self.sae_step(batch)
        while todo and trainer.n_training_samples >= todo[0] * total:
            self.take(todo.pop(0))
        self.nonfinite_loss.logical_or_(~torch.isfinite(out.loss.detach()))
        if trainer.n_training_steps % DIVERGENCE_CHECK_STEPS == 0 and bool(self.nonfinite_loss):
            raise diverged(self.run, f"non-finite loss by step {trainer.n_training_steps + 1}")
        while self.pending and trainer.n_training_samples >= self.pending[0] * total:
            self.on_snapshot(self.pending.pop(0), trainer.n_training_samples, trainer.sae)
        return out


def fit(run: TrainingRun, trainer, taken: dict, pending: list[float], on_snapshot) -> tuple[Any, float]:
    """Train to the end with sae-lens's loop; the trained SAE and the seconds it took. A
    non-finite loss or weights raise (:func:`diverged`)."""
    step = WatchedStep(run, trainer, taken, pending, on_snapshot)
    trainer.step = step
    started = time.perf_counter()
    trained = trainer.fit()
    train_seconds = time.perf_counter() - started
    if bool(step.nonfinite_loss):
        raise diverged(run, "non-finite loss")
    bad = nonfinite_tensors(trained)
    if bad:
        raise diverged(run, f"non-finite weights in {', '.join(bad)}")
    return trained, train_seconds


# ---- publish: the SAE folder, written whole or not at all --------------------------------


def training_metrics(run: TrainingRun, folder: Path, quality: dict, train_seconds: float, resumed_from: Path | None) -> dict:
    """``metrics.json`` of an SAE written into ``folder``: its quality on the held-out rows,
    what it is, how it was trained, and the sha256 of the files that decide how it is read."""
    spec = run.spec
    return {
        **quality,
        "architecture": spec.architecture,
        "width": spec.width,
        "sparsity_key": sparsity_key(spec.architecture),
        "sparsity": spec.sparsity,
        "init_seed": spec.init_seed,
        "data_seed": spec.data_seed,
        "training_seconds": train_seconds,
        "train_rows": int(run.train_mask.sum()),
        "resumed_from_samples": int(resumed_from.name) if resumed_from is not None else None,
        "spec": spec.to_dict(),
        "store": str(run.store_path),
        "store_content_hash": run.store.content_hash,
        "weights_sha256": file_sha256(folder / "sae_weights.safetensors"),
        # cfg.json decides how the weights are read (architecture, k, d_in...): hashed too
        "cfg_sha256": file_sha256(folder / "cfg.json"),
        "versions": producer_versions(),
    }


def write_sae_folder(run: TrainingRun, trained, folder: Path, taken: dict, train_seconds: float, resumed_from: Path | None) -> dict:
    """sae-lens's inference folder of ``trained`` (``cfg.json`` with sorted keys, weights), its
    snapshots, and ``metrics.json`` (returned), evaluated on ``run``'s held-out rows."""
    from sae_lens import SAE

    trained.save_inference_model(str(folder))
    # sae-lens builds cfg.json from a set of field names: its key order
    # follows the per-process string hash seed
    write_sorted_json(folder / "cfg.json")
    quality = evaluate_sae(SAE.load_from_disk(str(folder), device=run.spec.device), run.store, run.eval_mask)
    if run.snapshots:
        missing = [f for f in run.snapshots if f not in taken]
        if missing:
            raise SaesimError(f"{run.out_dir}: training ended without snapshots at fractions {missing}")
        write_snapshots(folder / SNAPSHOT_FILE, taken)
    metrics = training_metrics(run, folder, quality, train_seconds, resumed_from)
    if run.snapshots:
        metrics["snapshots"] = {f"{f:g}": taken[f][0] for f in run.snapshots}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def publish(run: TrainingRun, trained, taken: dict, train_seconds: float, resumed_from: Path | None) -> dict:
    """Write the SAE folder (:func:`write_sae_folder`) beside ``run.out_dir`` and put it in its
    place: ``out_dir`` is complete or absent, never half written. Returns its metrics."""
    out_dir = run.out_dir
    for stale in out_dir.parent.glob(f"{out_dir.name}.partial-*"):  # left by a killed job
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
    tmp.mkdir(parents=True)
    try:
        metrics = write_sae_folder(run, trained, tmp, taken, train_seconds, resumed_from)
        _publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metrics


def train_sae(
    store_path: str | os.PathLike,
    spec: SAESpec,
    out_dir: str | os.PathLike,
    *,
    resume_dir: str | os.PathLike | None = None,
    n_checkpoints: int = 0,
    trained_cache: str | os.PathLike | None = None,
    snapshot_fractions: Sequence[float] = (),
    on_snapshot: Callable[[float, int, Any], None] | None = None,
    snapshots: Sequence[float] = (),
) -> dict:
    """Train one SAE and publish ``out_dir`` atomically (``cfg.json``, weights, ``metrics.json``).

    With ``resume_dir`` and ``n_checkpoints > 0``, sae-lens writes that many
    trainer checkpoints (weights, optimiser, schedulers, counters) under
    ``resume_dir`` during training, and a rerun after a kill continues from the
    newest complete one; the batch stream is replayed to the same position, so
    the result equals an uninterrupted run bit for bit. ``resume_dir`` must lie
    outside ``out_dir`` (Snakemake deletes a job's outputs before it starts) and
    is removed once the SAE is published.

    ``resume_dir`` holds a key (:func:`resume_key`: spec, store content hash,
    versions, code); checkpoints made for any other key are removed, not resumed,
    and so is a checkpoint whose files fail to load or differ from the hashes
    recorded when it was written (a log line says which and why). Training that
    produces a non-finite loss or weights raises :class:`SaesimError` and
    publishes nothing.

    With ``trained_cache``, the published SAE is also kept there (hard links) with
    the same key, and a later call with the same key publishes it again without
    training (:func:`restore_trained`): the workflow trains all seeds of a variant in
    one job, and adding a seed must not retrain the others.
    With ``snapshot_fractions`` (each in (0, 1]), ``on_snapshot(fraction,
    samples_seen, sae)`` is called with the live training SAE right after the
    first step at which ``samples_seen >= fraction * training_samples`` (1.0:
    after the last step). It must not change the SAE (copy its state dict); the
    training trajectory and what is published stay exactly as without it.
    Snapshots need a run from the start, so they cannot be combined with
    ``resume_dir``.

    With ``snapshots`` (fractions in [0, 1); 0 is the initialised SAE, taken
    before the first step), the training SAE's state at each fraction is written
    into the published folder as :data:`SNAPSHOT_FILE` (:func:`write_snapshots`),
    so the training trajectory is read later without training again. These work
    with ``resume_dir``: each snapshot is also kept there as it is taken, and a
    resumed run reloads the ones taken before its checkpoint.
    """
    import torch

    out_dir = Path(out_dir)
    resume_dir = Path(resume_dir) if resume_dir is not None else None
    pending, kept = check_request(spec, out_dir, snapshot_fractions, on_snapshot, resume_dir, snapshots)
    torch.set_num_threads(spec.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    spec = replace(spec, device=resolve_device(spec.device))
    with open_store(store_path) as store:
        check_spec(spec, out_dir)
        key = training_key(spec, store, kept)
        if trained_cache is not None:
            # the key holds the store's *recorded* content_hash: check the rows still hash to it
            # (and hold no NaN) before reusing anything trained on them
            restored = restore_trained(Path(trained_cache), key, out_dir, before_restore=partial(store_checked_unchanged, store))
            if restored is not None:
                print(f"{out_dir}: restored from {trained_cache} (trained before with the same key)", flush=True)
                return restored
        train_mask, eval_mask = split_rows(store, spec)
        run = TrainingRun(spec, store, store_path, out_dir, train_mask, eval_mask, resume_dir, n_checkpoints, kept)
        prepare_resume_dir(run, key)
        trainer, resumed_from, taken = resume(run, trainer_config(run))
        trained, train_seconds = fit(run, trainer, taken, pending, on_snapshot)
        metrics = publish(run, trained, taken, train_seconds, resumed_from)
    if trained_cache is not None:
        remember_trained(Path(trained_cache), key, out_dir)
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    return metrics


# ---- snapshots of the training trajectory ---------------------------------------------

#: the file in a published SAE folder holding its training snapshots (train_sae's ``snapshots``)
SNAPSHOT_FILE = "snapshots.safetensors"


def snapshot_name(fraction: float) -> str:
    """File name of one snapshot kept in a resume folder."""
    return f"snapshot-{fraction:g}.safetensors"


def save_snapshot_state(path: Path, samples: int, state: dict) -> None:
    """One snapshot (training-SAE state dict and samples seen) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata={"samples": str(int(samples))})
    os.replace(tmp, path)


def load_snapshot_state(path: Path) -> tuple[int, dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        samples = int(f.metadata()["samples"])
        return samples, {k: f.get_tensor(k) for k in f.keys()}


def write_snapshots(path: Path, taken: dict[float, tuple[int, dict]]) -> None:
    """Every snapshot in one safetensors file: tensors ``"<fraction>/<name>"`` (the training
    SAE's state dict), metadata ``saesim_snapshots`` = JSON ``{fraction: samples seen}``."""
    from safetensors.torch import save_file

    tensors = {f"{f:g}/{k}": v.contiguous() for f, (_, state) in sorted(taken.items()) for k, v in state.items()}
    meta = json.dumps({f"{f:g}": int(n) for f, (n, _) in sorted(taken.items())}, sort_keys=True)
    save_file(tensors, str(path), metadata={"saesim_snapshots": meta})


def read_snapshots(folder: str | os.PathLike) -> dict[float, tuple[int, dict]]:
    """``{fraction: (samples seen, training-SAE state dict)}`` from a published SAE folder
    (empty when it holds no :data:`SNAPSHOT_FILE`)."""
    from safetensors import safe_open

    path = Path(folder) / SNAPSHOT_FILE
    if not path.exists():
        return {}
    with safe_open(str(path), framework="pt") as f:
        samples = json.loads(f.metadata()["saesim_snapshots"])
        out: dict[float, tuple[int, dict]] = {float(k): (int(n), {}) for k, n in samples.items()}
        for name in f.keys():
            frac, tensor = name.split("/", 1)
            out[float(frac)][1][tensor] = f.get_tensor(name)
    return out
