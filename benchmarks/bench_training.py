"""Benchmark: SAE training fed from an activation store against sae-lens fed from memory.

Not a test. Run once, when the machine is otherwise idle if possible:

    python benchmarks/bench_training.py            # ~5 minutes on 2 cores
    python benchmarks/bench_training.py --quick    # tiny sizes, checks the script

For d = 576 (SmolLM2-135M) and d = 2,304 (Gemma-2-2B), a TopK SAE (k = 64) is
trained twice on the same Gaussian rows, in the same process, alternating:

* ``store``: ``saesim.saes.training.train_sae`` on an HDF5 activation store (seeded
  shuffled batches streamed from disk, row exclusions, evaluation and the
  atomic publish of the checkpoint); its samples/s is over ``trainer.fit()``
  only (``training_seconds``), the part that the data feed can slow down;
* ``memory``: the same sae-lens ``TopKTrainingSAE`` and ``SAETrainer``, fed
  batches sliced from one in-memory torch tensor (the fastest feed there is).

Each is repeated and the best run kept (the machine is shared). Also measured:
the start-up cost every training job pays (a fresh Python importing torch,
sae-lens and saesim.saes.training), which is what training several SAEs in one job
saves. Writes ``benchmarks/results/training.{csv,md}``.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "src"))


def make_store(path: Path, n: int, d: int, seed: int = 0) -> None:
    import numpy as np

    from saesim.stores.activation_store import StoreWriter

    rng = np.random.default_rng(seed)
    with StoreWriter(path, d, chunk_rows=4096) as w:
        for s in range(0, n, 4096):
            w.append(rng.standard_normal((min(4096, n - s), d), dtype=np.float32))


def spec_for(width: int, samples: int, batch: int, eval_rows: int):
    from saesim.saes.training import SAESpec

    return SAESpec(
        architecture="topk", width=width, sparsity=64, init_seed=0, data_seed=0, lr=3e-4,
        training_samples=samples, batch_size=batch, eval_rows=eval_rows, threads=1, device="cpu",
    )


def run_store(store: Path, spec, out: Path) -> float:
    from saesim.saes.training import train_sae

    metrics = train_sae(store, spec, out)
    return spec.training_samples / metrics["training_seconds"]


def run_memory(data, spec) -> float:
    import torch
    from sae_lens import LoggingConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig

    from saesim.saes.training import build_training_sae

    torch.set_num_threads(spec.threads)
    sae = build_training_sae(spec, data.shape[1])
    g = torch.Generator().manual_seed(0)

    def batches():
        while True:
            perm = torch.randperm(data.shape[0], generator=g)
            for s in range(0, data.shape[0] - spec.batch_size + 1, spec.batch_size):
                yield data[perm[s : s + spec.batch_size]]

    cfg = SAETrainerConfig(
        total_training_samples=spec.training_samples, train_batch_size_samples=spec.batch_size, lr=spec.lr,
        lr_end=spec.lr, lr_warm_up_steps=0, lr_decay_steps=0, device="cpu", logger=LoggingConfig(log_to_wandb=False),
        dead_feature_window=1000, feature_sampling_window=2000, n_checkpoints=0, checkpoint_path=None,
    )
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches())
    start = time.perf_counter()
    trainer.fit()
    return spec.training_samples / (time.perf_counter() - start)


def startup_seconds() -> float:
    code = "import torch, sae_lens, saesim.saes.training"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import numpy as np
    import torch

    from saesim.stores.activation_store import open_store

    torch.set_num_threads(1)
    cases = [(64, 256, 4096)] if args.quick else [(576, 2304, 40_960), (2304, 4608, 20_480)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for d, width, samples in cases:
            n = max(2 * samples, 16_384)
            store = tmp / f"d{d}.h5"
            make_store(store, n, d)
            with open_store(store) as s:
                data = torch.from_numpy(np.ascontiguousarray(s.read_rows(0, s.n_rows)))
            spec = spec_for(width, samples, 512, 1024)
            best = {"store": 0.0, "memory": 0.0}
            for r in range(args.repeats):
                best["store"] = max(best["store"], run_store(store, spec, tmp / f"sae-d{d}-{r}"))
                best["memory"] = max(best["memory"], run_memory(data, spec))
            row = {
                "d": d, "width": width, "k": 64, "batch": 512, "samples": samples,
                "store_samples_per_s": round(best["store"]), "memory_samples_per_s": round(best["memory"]),
                "store_overhead_pct": round(100 * (best["memory"] / best["store"] - 1), 1),
            }
            print(row, flush=True)
            rows.append(row)
    start = startup_seconds()
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else ""
    with open(RESULTS / f"training{suffix}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    load = os.getloadavg()
    lines = [
        "# SAE training: store-fed vs in-memory (sae-lens TopK, k = 64, 1 thread, CPU)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. Best of {args.repeats} alternating runs.",
        "",
        "| d | width | samples | store-fed samples/s | in-memory samples/s | store overhead |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['d']} | {r['width']} | {r['samples']} | {r['store_samples_per_s']} | {r['memory_samples_per_s']} | {r['store_overhead_pct']}% |"
        for r in rows
    ]
    lines += [
        "",
        f"Start-up of a training job (fresh Python importing torch, sae-lens, saesim.saes.training): {start:.1f} s, "
        "paid once per job; the workflow trains every seed of a variant in one job.",
    ]
    (RESULTS / f"training{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
