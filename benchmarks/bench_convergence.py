"""The convergence job at SmolLM2's default shape: reading the training run's snapshots
against training the seeds again (what rule convergence did before), in one run.

Shape of the default run's convergence variant: TopK, d 576, width 1152, k 64, 3 seeds and
2 null seeds, snapshots at 0, 0.1, 0.25, 0.5 (+ the published SAE), 4,096 held-out rows.
Training is shortened to ``--samples`` (default 15,360 = 1/10 of the default 150k) so the
benchmark fits a few minutes; the "retrain" column scales the measured training time by
150,000 / samples to estimate what the old job spent. Writes benchmarks/results/convergence.{csv,md}.

    PYTHONPATH=src python benchmarks/bench_convergence.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=15_360)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    import torch

    from saesim.stores.activation_store import StoreWriter
    from saesim.analysis.convergence import measure_convergence
    from saesim.saes.training import SAESpec, train_sae

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    rng = np.random.default_rng(0)
    d, n_rows = 576, 40_000
    store = tmp / "store.h5"
    basis = rng.standard_normal((4000, d)).astype(np.float32)
    with StoreWriter(store, d, dtype="float32", chunk_rows=4096, attrs={"kind": "bench"}) as w:
        for s in range(0, n_rows, 4096):
            n = min(4096, n_rows - s)
            codes = (rng.random((n, 4000)) < 0.01) * rng.exponential(1.0, (n, 4000))
            w.append((codes @ basis).astype(np.float32))

    def spec(seed):
        return SAESpec("topk", 1152, 64, seed, seed, lr=3e-3, training_samples=args.samples, batch_size=512, eval_rows=4096, b_dec_init="mean")

    fractions = [0.0, 0.1, 0.25, 0.5]
    t0 = time.perf_counter()
    for s in range(5):
        train_sae(store, spec(s), tmp / f"sae{s}", snapshots=fractions)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure_convergence(
        store, {s: spec(s) for s in range(3)}, fractions, tmp / "work",
        published={s: tmp / f"sae{s}" for s in range(3)},
        null={"store": store, "specs": {s: spec(s) for s in (3, 4)}, "published": {s: tmp / f"sae{s}" for s in (3, 4)}},
    )
    read_s = time.perf_counter() - t0
    retrain_est = train_s * 3 / 5 * 150_000 / args.samples
    load = os.getloadavg()[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "convergence.csv").write_text(
        "what,seconds,load_1min\n"
        f"read snapshots (3 seeds + 2 null seeds x 5 fractions),{read_s:.1f},{load:.1f}\n"
        f"train 5 SAEs at {args.samples} samples,{train_s:.1f},{load:.1f}\n"
        f"retrain 3 seeds at 150000 samples (estimate),{retrain_est:.1f},{load:.1f}\n"
    )
    (out / "convergence.md").write_text(
        "# Convergence from the training run's snapshots vs training again\n\n"
        f"SmolLM2 default shape (TopK d 576, width 1152, k 64), synthetic store of {n_rows} rows, 1 torch thread, "
        f"1-minute load average {load:.1f} on a shared 2-core machine; import time not included.\n\n"
        f"| step | seconds |\n|---|---|\n"
        f"| read and evaluate snapshots, compare pairs (3 seeds + 2 null seeds, 5 fractions) | {read_s:.1f} |\n"
        f"| the old job: 3 seeds trained again at 150k samples (scaled from {args.samples} samples) | {retrain_est:.1f} |\n"
    )
    print((out / "convergence.md").read_text())


if __name__ == "__main__":
    main()
