"""A run killed with SIGKILL loses nothing it finished, leaves nothing half-written that
looks finished, and a rerun (--rerun-incomplete) finishes with the results of a run
that was never interrupted; SAE training resumes from its last trainer checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saesim.stores.activation_store import open_store
from saesim.errors import SaesimError
from workflow_helpers import SMALL, copy_workflow, job_counts, sha256

# Long enough SAE training (a few seconds to tens of seconds here) to be killed in the middle,
# with three trainer checkpoints (at 1/4, 1/2 and 3/4 of it).
CONFIG = copy.deepcopy(SMALL)
CONFIG["resume_checkpoints"] = 3
CONFIG["experiments"]["toy"]["sae"]["training"]["training_samples"] = 600_000

SAE = "results/toy/saes/toy/topk-w12-k2/seed0"
RESUME = "results/.resume/toy/toy/topk-w12-k2/seed0"
FINISHED = ["results/toy/stores/toy.h5", "results/toy/baselines/toy/w12.json"]


def snakemake(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def complete_checkpoints(workdir: Path) -> list[int]:
    resume = workdir / RESUME
    if not resume.is_dir():
        return []
    return sorted(int(p.name) for p in resume.iterdir() if p.name.isdigit() and (p / ".complete").exists())


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def kill_run_when(workdir: Path, target: str, ready, what: str, timeout: float = 600, poll: float = 0.05) -> None:
    """Start snakemake on ``target`` in its own process group and SIGKILL the whole group
    (snakemake and its job) as soon as ``ready()`` is true; fails if the run ends first or
    ``what`` never happens within ``timeout``. Nothing of the group survives the kill."""
    log = open(workdir / "killed-run.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", target],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended (rc {proc.returncode}) before {what}: {(workdir / 'killed-run.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen in time")
            time.sleep(poll)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        for _ in range(100):  # the job process too
            if not group_alive(proc.pid):
                break
            time.sleep(0.1)
        assert not group_alive(proc.pid), "processes of the killed run are still alive"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL


def kill_during_training(workdir: Path, target: str) -> list[int]:
    """Kill the run once the SAE job has written a complete trainer checkpoint; returns the checkpoints."""
    kill_run_when(workdir, target, lambda: bool(complete_checkpoints(workdir)), "a trainer checkpoint")
    return complete_checkpoints(workdir)


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory):
    base = tmp_path_factory.mktemp("interrupt")
    work = copy_workflow(base / "killed", CONFIG)
    snakemake(work, *FINISHED)  # finished artifacts the kill must not touch
    before = {f: sha256(work / f) for f in FINISHED}
    checkpoints = kill_during_training(work, SAE)
    state = {
        "sae_exists": (work / SAE).exists(),
        "partials": sorted(p.name for p in (work / SAE).parent.glob("seed0*") if p.name != "seed0"),
        "after_kill": {f: sha256(work / f) for f in FINISHED},
        "checkpoints": checkpoints,
    }
    # a killed snakemake leaves its directory lock behind
    snakemake(work, "--unlock")
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--rerun-incomplete", SAE, *FINISHED],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    state["rerun_jobs"] = job_counts(dry.stdout + dry.stderr)
    snakemake(work, "--rerun-incomplete", SAE)
    state["metrics"] = json.loads((work / SAE / "metrics.json").read_text())
    state["after_rerun"] = {f: sha256(work / f) for f in FINISHED}
    state["before"] = before
    state["work"] = work

    reference = copy_workflow(base / "uninterrupted", CONFIG)
    snakemake(reference, SAE)
    state["reference"] = json.loads((reference / SAE / "metrics.json").read_text())
    return state


def test_kill_keeps_finished_artifacts_and_leaves_no_complete_looking_partial(killed_and_rerun):
    s = killed_and_rerun
    assert s["checkpoints"], "the job was killed after a trainer checkpoint"
    assert not s["sae_exists"], "a killed training job leaves no SAE folder"
    assert s["partials"] == [], s["partials"]
    assert s["after_kill"] == s["before"] == s["after_rerun"], "finished artifacts are untouched"
    with open_store(s["work"] / FINISHED[0]) as store:  # still a complete, valid store
        assert store.n_rows == CONFIG["experiments"]["toy"]["store"]["n_rows"]
    assert s["rerun_jobs"] == {"train_saes_toy": 1}, "the rerun redoes the killed job only"


def test_rerun_resumes_and_equals_an_uninterrupted_run(killed_and_rerun):
    s = killed_and_rerun
    m, ref = s["metrics"], s["reference"]
    assert m["resumed_from_samples"] == max(s["checkpoints"]), "the rerun continued from the last checkpoint"
    assert ref["resumed_from_samples"] is None
    assert m["weights_sha256"] == ref["weights_sha256"], "resumed SAE == uninterrupted SAE, bit for bit"
    for key in ("explained_variance", "mse", "l0", "dead_fraction"):
        assert m[key] == ref[key]
    assert not (s["work"] / RESUME).exists(), "trainer checkpoints are removed once the SAE is published"
    print(f"\nkilled after checkpoints {s['checkpoints']}; rerun resumed_from_samples={m['resumed_from_samples']}; "
          f"weights sha256 {m['weights_sha256']} (uninterrupted: {ref['weights_sha256']})")


MODULAR = {
    "device": "cpu",
    "experiments": {
        "mod": {
            "source": {"kind": "modular", "p": 23, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64,
                       "train_frac": 0.5, "lr": 0.003, "epochs": 20, "eval_every": 10, "seed": 0},
            "hooks": ["blocks.0.hook_resid_post", "blocks.0.hook_mlp_out"],
            "store": {"n_rows": 1_500_000, "chunk_rows": 4096},
            "sae": {"seeds": [0, 1], "variants": [{"architecture": "topk", "width": 64, "k": [4]}]},
        }
    },
}
MODEL = "results/mod/model"
STORES = ["results/mod/stores/blocks.0.hook_resid_post.h5", "results/mod/stores/blocks.0.hook_mlp_out.h5"]


def test_kill_during_extraction_leaves_no_complete_looking_store(tmp_path):
    """SIGKILL the process group while the extraction job writes its stores: the finished model
    is untouched, no store a reader accepts is left, and the rerun gives the same stores as an
    uninterrupted extraction."""
    work = copy_workflow(tmp_path / "wf", MODULAR)
    snakemake(work, MODEL)
    model_hash = sha256(work / MODEL / "model.pt")
    stores_dir = work / "results/mod/stores"
    kill_run_when(
        work, STORES[0], lambda: stores_dir.is_dir() and bool(list(stores_dir.glob("*.partial-*"))),
        "a store was being written", poll=0.01,
    )
    partials = list(stores_dir.glob("*.partial-*"))
    assert partials, "the kill happened while a store was being written"
    for partial in partials:
        with pytest.raises(SaesimError):
            open_store(partial)
    for store in STORES:
        assert not (work / store).exists(), f"{store} exists after the kill"
    assert sha256(work / MODEL / "model.pt") == model_hash, "the finished model is untouched"

    snakemake(work, "--unlock")
    snakemake(work, "--rerun-incomplete", *STORES)
    assert not list(stores_dir.glob("*.partial-*")), "the rerun clears the killed job's partial files"
    rerun = {}
    for store in STORES:
        with open_store(work / store) as s:
            rerun[store] = s.content_hash
    for store in STORES:
        (work / store).unlink()
    snakemake(work, *STORES)
    for store in STORES:
        with open_store(work / store) as s:
            assert s.content_hash == rerun[store], "rerun store == uninterrupted store"
    print(f"\nkilled during extraction with {len(partials)} partial file(s); rerun content hashes {rerun}")
