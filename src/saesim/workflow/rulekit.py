"""Glue for Snakemake rule scripts: logging to the job's log, one clear error line."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from saesim.errors import SaesimError
from saesim.workflow.gpu import acquire_gpus, job_gpu_count

# Native thread pools (OpenMP, OpenBLAS, MKL; torch's intra-op pool follows OMP_NUM_THREADS)
# read these once, when numpy or torch is first imported. Snakemake sets them only for
# shell jobs, so a script job would start one thread per core and, beside other jobs,
# oversubscribe the CPU (OpenBLAS threads spin while they wait). Rule scripts import this
# module before numpy or torch, so the job's `threads:` applies to every pool.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads(threads: int | None) -> None:
    """Set the native thread-pool sizes to ``threads`` (None or < 1: leave them)."""
    if threads is not None and threads >= 1:
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(int(threads))


limit_native_threads(getattr(getattr(sys.modules.get("__main__"), "snakemake", None), "threads", None))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to a temporary name and rename, so the file is complete or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable))
    os.replace(tmp, path)


def write_csv_atomic(table: Any, path: str | os.PathLike) -> None:
    """Write a table (pandas DataFrame) as CSV the way every saesim table is written (no index,
    ``%.6g``) to a temporary name and rename, so the file is complete or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def run(snakemake: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(snakemake)`` with stdout/stderr (tqdm included) going to the job's log.

    A :class:`SaesimError` ends the job with its one-line message in the log and
    on the terminal, without a traceback. Other exceptions keep their traceback
    in the log (they are bugs).

    A job with a ``gpu`` resource > 0 first gets its own device(s)
    (:func:`saesim.workflow.gpu.acquire_gpus`: ``CUDA_VISIBLE_DEVICES``, set before torch
    initialises CUDA; under SLURM, the devices SLURM gave the job).
    """
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    terminal = sys.__stderr__
    with open(log_path, "w", buffering=1) as log:
        sys.stdout = sys.stderr = log
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        gpus = None
        try:
            n_gpus = job_gpu_count(snakemake)
            if n_gpus > 0:
                gpus = acquire_gpus(n_gpus, log=lambda msg: print(msg, file=log))
            main(snakemake)
        except SaesimError as err:
            print(f"saesim error: {err}", file=log)
            print(f"saesim error in rule {snakemake.rule}: {err}", file=terminal)
            sys.exit(1)
        except Exception:
            traceback.print_exc(file=log)
            raise
        finally:
            if gpus is not None:
                gpus.release()
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
