"""Store generation throughput of the SynthSAEBench-16k preset (16,384 features x 768 dims).

Builds the preset's sae_lens.synthetic model once (timed apart: on CPU its 100
orthogonalisation steps over 16k x 16k dominate, so --ortho-steps can lower them;
sampling speed does not depend on them), then writes --rows rows with
saesim.sources.synthetic.write_synthetic_store (the same code as the make_toy_store rule)
into a temporary store: rows/s of generation + writing, and the peak RSS of the
process (ru_maxrss) after building and after writing.

Usage: python benchmarks/bench_synthetic.py [--rows 200000] [--chunk-rows 8192] [--threads 2] [--ortho-steps N]
Writes benchmarks/results/synthetic.csv and synthetic.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthsaebench")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ortho-steps", type=int, default=None, help="override the preset's orthogonalisation steps (CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import sae_lens

    from saesim.sources.synthetic import build_model, resolve_source, sample_rows, write_synthetic_store

    model_dict = resolve_source({"kind": "toy", "preset": args.preset})["model"]
    if args.ortho_steps is not None and model_dict.get("orthogonalization") is not None:
        model_dict["orthogonalization"] = {**model_dict["orthogonalization"], "num_steps": args.ortho_steps}
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    model = build_model(model_dict)
    build_s = time.perf_counter() - t0
    rss_build = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = write_synthetic_store(Path(tmp) / "store.h5", model_dict, args.rows, chunk_rows=args.chunk_rows,
                                        progress=False, model=model)
        write_s = time.perf_counter() - t0
        size_mb = (Path(tmp) / "store.h5").stat().st_size / 2**20
    rss_write = peak_rss_mb()
    ortho = model_dict.get("orthogonalization") or {}
    row = {
        "preset": args.preset, "num_features": model_dict["num_features"], "hidden_dim": model_dict["hidden_dim"],
        "rows": args.rows, "chunk_rows": args.chunk_rows, "rows_per_call": sample_rows(model_dict["num_features"], args.chunk_rows),
        "threads": args.threads, "ortho_steps": ortho.get("num_steps", 0),
        "build_s": round(build_s, 2), "write_s": round(write_s, 2), "rows_per_s": round(args.rows / write_s, 1),
        "true_l0": round(summary["true_l0"], 3), "store_mb": round(size_mb, 1),
        "rss_imports_mb": round(rss0, 1), "peak_rss_after_build_mb": round(rss_build, 1), "peak_rss_after_write_mb": round(rss_write, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "synthetic.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    cmd = "python benchmarks/bench_synthetic.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out" and v is not None)
    md = f"""# Synthetic store generation ({args.preset}: {row['num_features']:,} features x {row['hidden_dim']} dims)

Command: `{cmd}`
Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, torch threads {args.threads}, device cpu; torch {torch.__version__}, sae-lens {sae_lens.__version__}.

| step | seconds | rows/s | peak RSS after (MB) |
|---|---:|---:|---:|
| imports (torch, sae-lens, saesim) | | | {row['rss_imports_mb']} |
| build the model ({row['ortho_steps']} orthogonalisation steps) | {row['build_s']} | | {row['peak_rss_after_build_mb']} |
| sample + write {args.rows:,} rows ({row['rows_per_call']} rows per sampling call, sparse product above 4,096 features) | {row['write_s']} | {row['rows_per_s']:,.0f} | {row['peak_rss_after_write_mb']} |

- Measured true L0 of the rows: {row['true_l0']} (SynthSAEBench reports about 34). Store size {row['store_mb']} MB (float32).
- Memory is bounded by the sampling batch (dense feature activations of at most 2^23 entries per call), not by the number of rows.
- The machine is shared with other jobs, so absolute numbers vary from run to run.
"""
    (args.out / "synthetic.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
