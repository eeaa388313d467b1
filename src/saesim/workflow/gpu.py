"""Give each concurrently running GPU job its own device(s) on a workstation.

``snakemake --cores 8 --resources gpu=2`` runs at most two jobs with ``gpu=1`` at a
time, but Snakemake does not tell a job *which* device to use: without help both
would run on device 0. A GPU job therefore takes device slots here before torch
initialises CUDA: one lock file per device (``gpu<id>.lock``) in a lock directory,
held with a non-blocking ``fcntl.flock`` for the life of the job process and
released by the kernel when it ends, however it ends (SIGKILL included). The job
then sees only its devices through ``CUDA_VISIBLE_DEVICES``.

* The devices to share are those in ``CUDA_VISIBLE_DEVICES`` when it is set (so a
  user can hand the workflow a subset), else ``0..N-1`` with N from the driver
  (``SAESIM_GPU_COUNT`` overrides the count, for tests).
* Under SLURM (``SLURM_JOB_ID`` set) nothing is changed: SLURM already chose the
  job's devices and set ``CUDA_VISIBLE_DEVICES``.
* The lock directory is ``.snakemake/gpu-slots`` in the working directory, which
  coordinates the jobs of one workflow directory; set ``SAESIM_GPU_LOCK_DIR`` to one
  shared path (e.g. ``/tmp/saesim-gpu-slots``) to coordinate several.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, MutableMapping, Sequence

from saesim.errors import SaesimError

DEFAULT_LOCK_DIR = ".snakemake/gpu-slots"


def gpu_driver_present() -> bool:
    """Whether this machine shows any GPU driver (NVIDIA or ROCm), checked without importing torch.

    False means ``torch.cuda.is_available()`` is False too, so a caller can skip the
    2-3 s torch import (the Snakefile asks this at every DAG build).
    """
    import shutil

    paths = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
    return any(os.path.exists(p) for p in paths) or shutil.which("nvidia-smi") is not None


def _driver_device_count() -> int:
    """GPUs the NVIDIA driver reports, without initialising CUDA in this process."""
    proc_dir = Path("/proc/driver/nvidia/gpus")
    if proc_dir.is_dir():
        return sum(1 for _ in proc_dir.iterdir())
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    except (OSError, subprocess.TimeoutExpired):
        pass
    # other drivers (ROCm builds of torch): ask torch in a child process, so that this
    # process's CUDA state stays untouched until CUDA_VISIBLE_DEVICES is set
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
            capture_output=True, text=True, timeout=120,
        )
        return int(out.stdout.strip() or 0) if out.returncode == 0 else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other values pass through, and
    a ``cuda`` device with no CUDA device available is one :class:`SaesimError`."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SaesimError(f"device {device!r} requested but no CUDA device is available")
    return device


def visible_devices(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Device ids this process may share out: ``CUDA_VISIBLE_DEVICES`` if set, else 0..N-1."""
    env = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"]
    if env.get("SAESIM_GPU_COUNT", "").strip():
        n = int(env["SAESIM_GPU_COUNT"])
    else:
        n = _driver_device_count()
    return [str(i) for i in range(n)]


@dataclass
class GpuAllocation:
    """The devices a job got; ``release()`` (or process exit) frees their slots."""

    devices: list[str]
    source: str  # "slots", "slurm" or "none"
    lock_files: list[Path] = field(default_factory=list)
    _fds: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def __enter__(self) -> "GpuAllocation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    return fd


def _cuda_already_initialised() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


def acquire_gpus(
    n: int,
    *,
    lock_dir: str | os.PathLike | None = None,
    environ: MutableMapping[str, str] | None = None,
    devices: Sequence[str] | None = None,
    timeout: float | None = None,
    poll: float = 2.0,
    log: Callable[[str], None] = print,
) -> GpuAllocation:
    """Take ``n`` free device slots and point ``CUDA_VISIBLE_DEVICES`` at them.

    Waits (polling every ``poll`` seconds) while other jobs hold the slots; with a
    ``timeout`` (seconds, 0 = try once) raises :class:`SaesimError` when it runs out.
    Never holds some slots while waiting for others, so jobs cannot deadlock.
    """
    env = os.environ if environ is None else environ
    if n <= 0:
        return GpuAllocation([], "none")
    if env.get("SLURM_JOB_ID"):
        got = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d]
        if got:
            log(f"gpu: SLURM job {env['SLURM_JOB_ID']} uses the device(s) SLURM gave it: CUDA_VISIBLE_DEVICES={','.join(got)}")
        else:
            log(f"gpu: SLURM job {env['SLURM_JOB_ID']} asked for {n} GPU(s) but SLURM set no CUDA_VISIBLE_DEVICES")
        return GpuAllocation(got, "slurm")
    pool = list(devices) if devices is not None else visible_devices(env)
    if not pool:
        log(f"gpu: the job asks for {n} GPU(s) but none is visible; CUDA_VISIBLE_DEVICES left unchanged")
        return GpuAllocation([], "none")
    if n > len(pool):
        raise SaesimError(f"the job asks for {n} GPUs but only {len(pool)} are visible ({','.join(pool)})")
    if _cuda_already_initialised():
        raise SaesimError("gpu: torch initialised CUDA before the job's devices were chosen")
    lock_dir = Path(lock_dir or env.get("SAESIM_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR)
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    last_note = None
    while True:
        fds, taken = [], []
        for dev in pool:
            fd = _try_lock(lock_dir / f"gpu{dev}.lock")
            if fd is not None:
                fds.append(fd)
                taken.append(dev)
                if len(taken) == n:
                    break
        if len(taken) == n:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(taken)
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
            files = [lock_dir / f"gpu{d}.lock" for d in taken]
            log(f"gpu: using device(s) {','.join(taken)} of {','.join(pool)} (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}, locks in {lock_dir})")
            return GpuAllocation(taken, "slots", files, fds)
        for fd in fds:  # all or nothing
            os.close(fd)
        waited = time.monotonic() - started
        if timeout is not None and waited >= timeout:
            raise SaesimError(
                f"no free GPU: all of {','.join(pool)} are held by other jobs (locks in {lock_dir}); "
                "run with --resources gpu=N for at most N GPUs"
            )
        if last_note is None or waited - last_note >= 60:
            log(f"gpu: waiting for {n} free device(s) of {','.join(pool)} (locks in {lock_dir})")
            last_note = waited
        time.sleep(poll if timeout is None else max(0.0, min(poll, timeout - waited)))


def job_gpu_count(snakemake) -> int:
    """The ``gpu`` resource of a Snakemake job (0 when absent)."""
    resources = getattr(snakemake, "resources", None)
    if resources is None:
        return 0
    try:
        value = resources.get("gpu", 0)
    except AttributeError:
        value = getattr(resources, "gpu", 0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
