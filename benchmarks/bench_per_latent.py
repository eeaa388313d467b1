"""Benchmark: the per-latent statistics pass (saesim.analysis.per_latent.latent_stats) beside one plain
encoder pass over the same rows, in the same process, at 65,536 latents x d = 2,304.

Not a test. Run once, when the machine is otherwise idle if possible:

    python benchmarks/bench_per_latent.py                 # 65,536 x 2,304, 2,048 rows (a few minutes on 2 cores)
    python benchmarks/bench_per_latent.py --rows 4096
    python benchmarks/bench_per_latent.py --quick         # tiny sizes, checks the script

The SAE is a random TopK SAE (float32 W_enc [d, n], W_dec [n, d], k = 64) whose encoder is
``topk(x @ W_enc + b_enc)`` with ReLU, the same function for both passes. Rows are Gaussian
float32 held in memory (so neither pass reads a file). Passes, in order: plain encoder pass,
per-latent pass, plain encoder pass again (the plain time is the mean of the two, which brackets
drift from the shared machine's load). Both passes use the same row blocks
(``chunk_rows_for(n, budget)``). Memory: peak RSS sampled every 5 ms by a thread, minus the RSS
before the pass (weights and rows already resident): "above the weights and rows".

Appends a row to ``benchmarks/results/per_latent.md`` (and .csv), with the 1-minute load
average before and after, and extrapolates the per-latent pass to 1M rows linearly (both passes
are linear in the rows; the accumulators do not grow with them).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "src"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak RSS above the level at entry, sampled by a thread."""

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def above(self) -> int:
        return self.peak - self.base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latents", type=int, default=65536)
    ap.add_argument("--d", type=int, default=2304)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--budget-mb", type=float, default=256)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.latents, args.d, args.rows, args.k = 4096, 256, 512, 16

    import numpy as np
    import torch

    from saesim.analysis.per_latent import chunk_rows_for, latent_stats

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    load_before = os.getloadavg()[0]
    gen = torch.Generator().manual_seed(0)
    n, d = args.latents, args.d
    W_enc = torch.randn(d, n, generator=gen) / d**0.5
    b_enc = torch.zeros(n)
    W_dec = torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=1)
    b_dec = torch.zeros(d)
    rows = np.random.default_rng(0).standard_normal((args.rows, d), dtype=np.float32)
    weights_gb = (W_enc.numel() + W_dec.numel()) * 4 / 2**30
    block = chunk_rows_for(n, args.budget_mb)
    blocks = [rows[s : s + block] for s in range(0, len(rows), block)]

    def encode(x):
        pre = x @ W_enc + b_enc
        vals, idx = pre.topk(args.k, dim=1)
        return torch.zeros_like(pre).scatter_(1, idx, torch.relu(vals))

    def plain():
        with torch.no_grad():
            for b in blocks:
                encode(torch.from_numpy(b))

    W_dec_np = W_dec.numpy()
    results = {}
    for name, fn in (("plain_1", plain),
                     ("per_latent", lambda: latent_stats(encode, W_dec_np, b_dec.numpy(), blocks, memory_budget_mb=args.budget_mb)),
                     ("plain_2", plain)):
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            results[name] = (time.perf_counter() - t0, time.process_time() - c0, mem.above)
        print(name, f"{results[name][0]:.1f} s wall, {results[name][1]:.1f} s CPU, {results[name][2] / 2**20:.0f} MiB above", flush=True)
    load_after = os.getloadavg()[0]
    plain_wall = (results["plain_1"][0] + results["plain_2"][0]) / 2
    plain_cpu = (results["plain_1"][1] + results["plain_2"][1]) / 2
    pl_wall, pl_cpu, pl_mem = results["per_latent"]
    plain_mem = max(results["plain_1"][2], results["plain_2"][2])
    row = {
        "latents": n, "d": d, "k": args.k, "rows": args.rows, "block_rows": block, "budget_mb": args.budget_mb,
        "threads": torch.get_num_threads(), "weights_gib": round(weights_gb, 2),
        "plain_s": round(plain_wall, 1), "plain_cpu_s": round(plain_cpu, 1),
        "per_latent_s": round(pl_wall, 1), "per_latent_cpu_s": round(pl_cpu, 1),
        "ratio_wall": round(pl_wall / plain_wall, 2), "ratio_cpu": round(pl_cpu / plain_cpu, 2),
        "plain_above_mib": round(plain_mem / 2**20), "per_latent_above_mib": round(pl_mem / 2**20),
        "per_latent_1M_rows_h": round(pl_wall / args.rows * 1e6 / 3600, 2),
        "per_latent_1M_rows_cpu_h": round(pl_cpu / args.rows * 1e6 / 3600, 2),
        "plain_1M_rows_h": round(plain_wall / args.rows * 1e6 / 3600, 2),
        "load_before": round(load_before, 1), "load_after": round(load_after, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "implementation": "csr",
    }
    print(row)
    if args.no_write or args.quick:
        return
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "per_latent.csv"
    new = not path.exists()
    fields = list(row) if new else next(csv.reader(open(path)))  # keep an existing file's columns
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
    md = RESULTS / "per_latent.md"
    if not md.exists():
        md.write_text(
            "# Per-latent pass vs one plain encoder pass (benchmarks/bench_per_latent.py)\n\n"
            "Random TopK SAE (float32), Gaussian rows in memory; the same encoder and row blocks for both passes, "
            "in one process; plain = mean of a pass before and one after the per-latent pass. Memory: peak RSS "
            "above the weights and rows (sampled every 5 ms). 1M rows: linear extrapolation of the measured rate "
            "(the pass is linear in rows; its accumulators are O(latents)). The machine was shared: load is the "
            "1-minute load average on its cores before/after.\n\n"
            "| latents x d (k) | rows (block) | threads | weights GiB | plain s (CPU s) | per-latent s (CPU s) | ratio wall (CPU) "
            "| above weights MiB: plain / per-latent | 1M rows, per-latent h wall (CPU h; plain wall h) | load before/after |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        )
    with open(md, "a") as f:
        f.write(
            f"| {n:,} x {d:,} ({args.k}) | {args.rows:,} ({block}) | {row['threads']} | {row['weights_gib']} "
            f"| {row['plain_s']} ({row['plain_cpu_s']}) | {row['per_latent_s']} ({row['per_latent_cpu_s']}) "
            f"| {row['ratio_wall']} ({row['ratio_cpu']}) | {row['plain_above_mib']} / {row['per_latent_above_mib']} "
            f"| {row['per_latent_1M_rows_h']} ({row['per_latent_1M_rows_cpu_h']}; {row['plain_1M_rows_h']}) | {row['load_before']} / {row['load_after']} |\n"
        )


if __name__ == "__main__":
    main()
