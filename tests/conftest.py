import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import TINY_SYNTHETIC_MODEL, copy_workflow

# Tests run on 2 shared cores: one torch thread each keeps them predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)



#: the whole workflow on a tiny toy config: two TopK sparsities and one ReLU + L1, two seeds
TINY = {
    "device": "cpu",
    "baseline_draws": 2,
    "experiments": {
        "toy": {
            "source": {"kind": "toy", "model": TINY_SYNTHETIC_MODEL},
            "store": {"n_rows": 6000, "chunk_rows": 1024},
            "sae": {
                "seeds": [0, 1],
                "training": {"lr": 0.01, "training_samples": 12000, "batch_size": 256, "eval_rows": 1024},
                "variants": [
                    {"architecture": "topk", "width": 12, "k": [2, 4]},
                    {"architecture": "standard", "width": 12, "l1_coefficient": [0.05]},
                ],
            },
        }
    },
}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def workflow_copy(tmp_path_factory):
    """A copy of the workflow with the TINY config, run once to completion and shared by every
    test of the session (tests/test_workflow.py, tests/test_report.py). Tests that change files
    in it restore them before they end."""
    work = copy_workflow(tmp_path_factory.mktemp("wf"), TINY)
    snakemake(work)
    return work
