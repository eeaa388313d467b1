"""Helpers for tests that run the whole workflow in a temporary copy of the repository."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: a tiny sae_lens.synthetic model (8 features in 16 dims, true L0 2.0) for workflow tests
TINY_SYNTHETIC_MODEL = {
    "num_features": 8,
    "hidden_dim": 16,
    "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.1},
    "bias": False,
    "seed": 0,
}

# One toy SAE variant, two seeds: every toy rule runs once or twice, in seconds each.
SMALL = {
    "device": "cpu",
    "baseline_draws": 2,
    "experiments": {
        "toy": {
            "source": {"kind": "toy", "model": TINY_SYNTHETIC_MODEL},
            "store": {"n_rows": 6000, "chunk_rows": 1024},
            "sae": {
                "seeds": [0, 1],
                "training": {"lr": 0.01, "training_samples": 12000, "batch_size": 256, "eval_rows": 1024},
                "variants": [{"architecture": "topk", "width": 12, "k": [2]}],
            },
        }
    },
}


def copy_workflow(dst: Path, config: dict) -> Path:
    """The workflow (Snakefile, rules, scripts, library, profiles, presets) in ``dst`` with ``config``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "scripts", "src", "profiles", "envs", "config"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy(src, dst / name)
    (dst / "config.yaml").write_text(yaml.safe_dump(config))
    return dst


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count} (without the total)."""
    counts = {}
    for line in dry_run_output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def result_fingerprint(workdir: Path, exp: str = "toy") -> dict[str, str]:
    """Everything a run computes that must not depend on where it ran: tables, per-pair,
    baseline and ground-truth JSON, SAE weights and metrics (without timings and versions)."""
    res = workdir / "results" / exp
    out = {}
    for name in ("stability.csv", "pairs.csv"):
        out[f"tables/{name}"] = sha256(res / "tables" / name)
    for sub in ("pairs", "baselines", "ground_truth"):
        for f in sorted((res / sub).rglob("*.json")):
            out[str(f.relative_to(res))] = sha256(f)
    for metrics in sorted((res / "saes").rglob("metrics.json")):
        m = json.loads(metrics.read_text())
        rel = str(metrics.parent.relative_to(res))
        out[f"{rel}/weights_sha256"] = m["weights_sha256"]
        assert m["weights_sha256"] == sha256(metrics.parent / "sae_weights.safetensors")
        for key in ("training_seconds", "versions", "resumed_from_samples"):
            m.pop(key, None)
        out[f"{rel}/metrics"] = hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()
    return out
