"""The GPU device-slot allocator (saesim.workflow.gpu) with fake device counts: no GPU needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from saesim.errors import SaesimError
from saesim.workflow import gpu
from saesim.workflow.gpu import acquire_gpus, job_gpu_count, visible_devices
from saesim.workflow.rulekit import run

ROOT = Path(__file__).resolve().parents[1]


def quiet(msg):
    pass


def test_visible_devices_from_count_and_from_cuda_visible_devices():
    assert visible_devices({"SAESIM_GPU_COUNT": "3"}) == ["0", "1", "2"]
    assert visible_devices({"SAESIM_GPU_COUNT": "0"}) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "3,5", "SAESIM_GPU_COUNT": "8"}) == ["3", "5"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_concurrent_jobs_get_different_devices(tmp_path):
    env_a, env_b, env_c = ({"SAESIM_GPU_COUNT": "2"} for _ in range(3))
    a = acquire_gpus(1, lock_dir=tmp_path, environ=env_a, timeout=0, log=quiet)
    b = acquire_gpus(1, lock_dir=tmp_path, environ=env_b, timeout=0, log=quiet)
    assert {env_a["CUDA_VISIBLE_DEVICES"], env_b["CUDA_VISIBLE_DEVICES"]} == {"0", "1"}
    assert env_a["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    with pytest.raises(SaesimError, match="no free GPU"):
        acquire_gpus(1, lock_dir=tmp_path, environ=env_c, timeout=0, log=quiet)
    a.release()
    c = acquire_gpus(1, lock_dir=tmp_path, environ=env_c, timeout=0, log=quiet)
    assert env_c["CUDA_VISIBLE_DEVICES"] == a.devices[0]
    b.release()
    c.release()


def test_a_job_waits_for_a_slot_and_never_holds_part_of_a_request(tmp_path):
    held = acquire_gpus(1, lock_dir=tmp_path, environ={"SAESIM_GPU_COUNT": "2"}, timeout=0, log=quiet)
    # two devices wanted, one free: it takes none of them and times out
    with pytest.raises(SaesimError, match="no free GPU"):
        acquire_gpus(2, lock_dir=tmp_path, environ={"SAESIM_GPU_COUNT": "2"}, timeout=0.3, poll=0.1, log=quiet)
    other = acquire_gpus(1, lock_dir=tmp_path, environ={"SAESIM_GPU_COUNT": "2"}, timeout=0, log=quiet)
    assert other.devices != held.devices
    held.release()
    other.release()
    env = {"SAESIM_GPU_COUNT": "2"}
    both = acquire_gpus(2, lock_dir=tmp_path, environ=env, timeout=0, log=quiet)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"
    both.release()


def test_subset_given_by_cuda_visible_devices_is_shared_out(tmp_path):
    env1, env2 = {"CUDA_VISIBLE_DEVICES": "3,5"}, {"CUDA_VISIBLE_DEVICES": "3,5"}
    with acquire_gpus(1, lock_dir=tmp_path, environ=env1, timeout=0, log=quiet):
        with acquire_gpus(1, lock_dir=tmp_path, environ=env2, timeout=0, log=quiet):
            assert {env1["CUDA_VISIBLE_DEVICES"], env2["CUDA_VISIBLE_DEVICES"]} == {"3", "5"}
    assert (tmp_path / "gpu3.lock").exists() and (tmp_path / "gpu5.lock").exists()


def test_slurm_devices_are_kept(tmp_path):
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "1", "SAESIM_GPU_COUNT": "4"}
    notes = []
    got = acquire_gpus(1, lock_dir=tmp_path / "locks", environ=env, timeout=0, log=notes.append)
    assert got.source == "slurm" and got.devices == ["1"] and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert not (tmp_path / "locks").exists()
    assert "SLURM" in notes[0]


def test_no_device_or_too_many_requested(tmp_path):
    env = {"SAESIM_GPU_COUNT": "0"}
    got = acquire_gpus(1, lock_dir=tmp_path, environ=env, timeout=0, log=quiet)
    assert got.devices == [] and "CUDA_VISIBLE_DEVICES" not in env
    with pytest.raises(SaesimError, match="asks for 3 GPUs but only 2"):
        acquire_gpus(3, lock_dir=tmp_path, environ={"SAESIM_GPU_COUNT": "2"}, timeout=0, log=quiet)
    assert acquire_gpus(0, lock_dir=tmp_path, environ={}, log=quiet).devices == []


HOLDER = """
import sys, time
from saesim.workflow.gpu import acquire_gpus
a = acquire_gpus(1, lock_dir=sys.argv[1], timeout=0, log=lambda msg: None)
print(a.devices[0], flush=True)
time.sleep(600)
"""


def test_slots_of_a_killed_job_are_freed(tmp_path):
    env = {**os.environ, "SAESIM_GPU_COUNT": "2", "PYTHONPATH": str(ROOT / "src")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        got = [p.stdout.readline().split()[-1] for p in procs]
        assert sorted(got) == ["0", "1"]  # two processes, two devices
        with pytest.raises(SaesimError):
            acquire_gpus(1, lock_dir=tmp_path, environ={"SAESIM_GPU_COUNT": "2"}, timeout=0, log=quiet)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=30)
        mine = {"SAESIM_GPU_COUNT": "2"}
        with acquire_gpus(1, lock_dir=tmp_path, environ=mine, timeout=5, poll=0.1, log=quiet):
            assert mine["CUDA_VISIBLE_DEVICES"] == got[0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_rulekit_pins_gpu_jobs_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAESIM_GPU_COUNT", "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    seen = {}

    def main(smk):
        seen[smk.rule] = os.environ.get("CUDA_VISIBLE_DEVICES")

    gpu_job = SimpleNamespace(rule="train_sae", log=[str(tmp_path / "a.log")], resources={"gpu": 1})
    assert job_gpu_count(gpu_job) == 1
    run(gpu_job, main)
    assert seen["train_sae"] in {"0", "1"}
    assert "gpu: using device" in (tmp_path / "a.log").read_text()
    assert (tmp_path / ".snakemake/gpu-slots").is_dir()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cpu_job = SimpleNamespace(rule="stability_table", log=[str(tmp_path / "b.log")], resources={"gpu": 0})
    run(cpu_job, main)
    assert seen["stability_table"] is None
    no_res = SimpleNamespace(rule="x", log=[str(tmp_path / "c.log")])
    assert job_gpu_count(no_res) == 0


def test_rule_scripts_pin_native_thread_pools_to_the_jobs_threads():
    # A rule script defines `snakemake` in __main__ and imports saesim.workflow.rulekit before numpy
    # or torch: their pools must then have the job's `threads`, not one per core.
    code = (
        "import types; snakemake = types.SimpleNamespace(threads=1)\n"
        "import saesim.workflow.rulekit, os, torch\n"
        "print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'], torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "1", "1"]
    # outside a rule script nothing is set
    bare = subprocess.run([sys.executable, "-c", "import saesim.workflow.rulekit, os; print(os.environ.get('OMP_NUM_THREADS'))"],
                          env=env, capture_output=True, text=True, check=True).stdout.split()
    assert bare == ["None"]


def test_resolve_device_auto_and_refused_cuda(monkeypatch):
    import torch

    from saesim.workflow.gpu import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(SaesimError, match="device 'cuda:1' requested but no CUDA device is available"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"


@pytest.mark.parametrize("value,offline", [("1", True), (" TRUE ", True), ("on", True), ("Yes", True),
                                           ("0", False), ("", False), ("off", False)])
def test_hf_hub_offline_has_one_parsing(monkeypatch, value, offline):
    from saesim.sources import hub as models

    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert models.hub_offline() is offline
    if offline:
        assert models.hub_reachable() is False  # no network try when forced offline


def test_auto_device_without_a_gpu_driver_skips_torch(monkeypatch):
    """With no GPU driver on the machine, ``device: auto`` plans CPU jobs without importing torch."""
    import sys
    import shutil

    from saesim.workflow import planning

    class Forbidden:
        def __getattr__(self, name):
            raise AssertionError(f"torch.{name} used although no GPU driver is present")

    monkeypatch.setattr(gpu.os.path, "exists", lambda p: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "torch", Forbidden())
    assert gpu.gpu_driver_present() is False
    assert planning.uses_gpu("auto") is False
    assert planning.uses_gpu("cuda") is True


def test_gpu_driver_present_sees_the_nvidia_driver(monkeypatch):
    monkeypatch.setattr(gpu.os.path, "exists", lambda p: p == "/proc/driver/nvidia")
    assert gpu.gpu_driver_present() is True
