"""The workflow through `--profile profiles/slurm` on a real single-node SLURM cluster.

CI (.ci/run) starts the cluster with .ci/setup-slurm.sh (Debian's slurm-wlm and munge:
one node with all CPUs, a fake GPU `Gres=gpu:1` backed by /dev/null, accounting off,
finished jobs logged by jobcomp/filetxt and kept by slurmctld for `scontrol show job`).
The test skips, saying why, only where that cluster cannot be had.

A small toy config runs through the profile (with the two options a cluster without
accounting needs, and train_saes_toy forced to request a GPU, since there is no CUDA here and
SAE training runs on the CPU). Checked: every job of the dry run became one SLURM job,
with the threads, memory, time limit and GPU request of its rule as SLURM recorded them;
the GPU jobs used the device SLURM gave them; and every result equals a local run's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from workflow_helpers import SMALL, copy_workflow, job_counts, result_fingerprint

SLURM_OPTIONS = [
    "--slurm-status-command", "squeue",  # accounting is off: sacct fails
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks", "5",
    "--seconds-between-status-checks", "5",
    "--set-resources", "train_saes_toy:gpu=1",  # no CUDA here: force the GPU request path
]


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def cluster_problem() -> str | None:
    """Why no SLURM cluster can be used here (None when one answers with an idle node)."""
    if os.environ.get("SAESIM_SLURM_UNAVAILABLE"):
        return f".ci/setup-slurm.sh could not start SLURM: {os.environ['SAESIM_SLURM_UNAVAILABLE']}"
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "SLURM is not installed (.ci/setup-slurm.sh installs and starts a single-node cluster, as root)"
    try:
        ping = _run(["scontrol", "ping"], timeout=30)
        nodes = _run(["sinfo", "-h", "-N", "-o", "%T %G"], timeout=30)
    except subprocess.TimeoutExpired:
        return "the SLURM controller does not answer (scontrol ping timed out)"
    if "is UP" not in ping.stdout:
        return f"no SLURM controller is up ({ping.stdout.strip() or ping.stderr.strip()}); run .ci/setup-slurm.sh"
    usable = [l for l in nodes.stdout.splitlines() if l.split()[0].rstrip("*~#") in ("idle", "mixed", "allocated", "completing")]
    if not usable:
        return f"no usable SLURM node: {nodes.stdout.strip()!r}"
    if not any("gpu" in l for l in usable):
        return f"the SLURM node has no gpu gres to test GPU requests with: {nodes.stdout.strip()!r}"
    return None


def scontrol_job(jobid: str) -> dict[str, str]:
    out = _run(["scontrol", "show", "job", "-o", jobid], timeout=60)
    assert out.returncode == 0, f"scontrol show job {jobid}: {out.stderr}"
    fields = {}
    for token in out.stdout.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def limit_minutes(time_limit: str) -> int:
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, hms = time_limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (1 if s else 0)


def parse_run_log(text: str):
    """Snakemake's job blocks {jobid: {rule, resources, threads}} and {jobid: slurm job id}."""
    jobs, current = {}, None
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(?:local)?rule (\w+):$", s)
        if m:
            current = {"rule": m.group(1), "threads": 1, "resources": {}}
            continue
        if current is None:
            continue
        if s.startswith("jobid:"):
            jobs[int(s.split(":")[1])] = current
        elif s.startswith("threads:"):
            current["threads"] = int(s.split(":")[1])
        elif s.startswith("resources:"):
            for item in s[len("resources:"):].split(","):
                k, _, v = item.strip().partition("=")
                current["resources"][k] = v
    submitted = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text)
    }
    return jobs, submitted


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("slurm")
    slurm_dir = copy_workflow(base / "slurm", SMALL)
    local_dir = copy_workflow(base / "local", SMALL)
    py = [sys.executable, "-m", "snakemake"]

    dry = _run(py + ["-n", "--profile", "profiles/slurm", *SLURM_OPTIONS], cwd=slurm_dir, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    expected = job_counts(dry.stdout + dry.stderr)
    expected.pop("all", None)

    # the local reference run goes on beside the SLURM run (which mostly waits on the queue)
    with open(base / "local-run.log", "w") as local_log:
        local = subprocess.Popen(py + ["--cores", "1"], cwd=local_dir, stdout=local_log, stderr=subprocess.STDOUT)
        try:
            proc = _run(py + ["--profile", "profiles/slurm", *SLURM_OPTIONS], cwd=slurm_dir, timeout=900)
            local.wait(timeout=900)
        finally:
            if local.poll() is None:
                local.kill()
                local.wait()
    log = proc.stdout + proc.stderr
    (base / "slurm-run.log").write_text(log)
    assert proc.returncode == 0, f"SLURM run failed:\n{log[-6000:]}"
    assert local.returncode == 0, (base / "local-run.log").read_text()[-4000:]
    return {"slurm": slurm_dir, "local": local_dir, "log": log, "expected": expected}


def test_every_job_became_a_slurm_job_with_its_resources(runs):
    jobs, submitted = parse_run_log(runs["log"])
    by_rule = Counter(jobs[j]["rule"] for j in submitted)
    assert dict(by_rule) == runs["expected"], "every job of the dry run (but `all`) is one SLURM job"

    jobcomp = {}
    config = _run(["scontrol", "show", "config"], timeout=60).stdout
    loc = re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M)
    if "jobcomp/filetxt" in config and loc and Path(loc.group(1)).is_file():
        for line in Path(loc.group(1)).read_text().splitlines():
            m = re.search(r"JobId=(\d+) ", line)
            if m:
                jobcomp[m.group(1)] = line

    gpu_jobs = []
    for snakemake_id, slurm_id in submitted.items():
        job = jobs[snakemake_id]
        rule, res = job["rule"], job["resources"]
        rec = scontrol_job(slurm_id)
        where = f"SLURM job {slurm_id} (rule {rule})"
        assert rec["JobState"] == "COMPLETED" and rec["ExitCode"] == "0:0", where
        assert rec["Comment"].startswith(f"rule_{rule}"), where
        assert Path(rec["WorkDir"]).resolve() == runs["slurm"].resolve(), where
        assert rec["MinMemoryNode"] == f"{res['mem_mb']}M", where
        assert limit_minutes(rec["TimeLimit"]) == int(res["runtime"]), where
        assert int(rec["CPUs/Task"]) == job["threads"], where
        tres_per_job = rec.get("TresPerJob", "")
        if int(res.get("gpu", 0)) > 0:
            assert tres_per_job == f"gres:gpu:{res['gpu']}", where
            gpu_jobs.append((slurm_id, rule, tres_per_job))
        else:
            assert "gpu" not in tres_per_job, where
        if jobcomp:
            line = jobcomp[slurm_id]  # the persistent record of the finished job
            assert "JobState=COMPLETED" in line and f"mem={res['mem_mb']}M" in line, line
            assert f"TimeLimit={int(res['runtime'])} " in line, line
    assert {rule for _, rule, _ in gpu_jobs} == {"train_saes_toy"}
    assert len(gpu_jobs) == runs["expected"]["train_saes_toy"]
    print(f"\n{len(submitted)} SLURM jobs: {dict(by_rule)}")
    for slurm_id, rule, tres in gpu_jobs:
        print(f"GPU job {slurm_id} ({rule}): TresPerJob={tres}")


def test_gpu_jobs_use_the_device_slurm_gave_them(runs):
    logs = sorted((runs["slurm"] / "results/logs/train_saes").rglob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        assert re.search(r"gpu: SLURM job \d+ uses the device\(s\) SLURM gave it: CUDA_VISIBLE_DEVICES=0", text), text[:500]
    others = (runs["slurm"] / "results/logs/stability_table/toy.log").read_text()
    assert "gpu:" not in others


def test_outputs_equal_a_local_run(runs):
    slurm, local = result_fingerprint(runs["slurm"]), result_fingerprint(runs["local"])
    assert len(slurm) >= 10
    assert slurm == local
