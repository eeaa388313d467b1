"""Benchmark: comparing two SAE decoders at real dictionary sizes, on this machine.

Not a test. Run once, when the machine is otherwise idle if possible:

    python benchmarks/bench_compare.py            # ~20 minutes on 2 cores
    python benchmarks/bench_compare.py --quick    # tiny sizes, checks the script
    python benchmarks/bench_compare.py --cli-only # only the 65,536 scan + CLI rows (~12 min),
                                                  # merged into the existing results

Every case runs in a fresh Python process so that its peak RSS
(``ru_maxrss``) is its own. Cases:

* ``mmcs``: :func:`saesim.similarity.max_abs_cosine` (best match both ways, one
  pass), with the torch fp32 GEMM rate measured in the same process right before
  and after, on the same tile shapes (``gemm_gflops``: the better of the two);
* ``matching``: :func:`saesim.similarity.one_to_one_matching` at the default
  1 GB budget (top-16 candidates + sparse assignment beyond ~10k latents);
* ``notebook``: normalise both decoders, build the full cosine matrix,
  ``.abs().max()`` along both dimensions, where it fits in ~8 GB;
* ``exact_vs_sparse``: exact Hungarian and the sparse top-16 assignment on the
  same 8,192-latent pairs (random decoders, and a pair sharing half its latents);
* ``cli``: the whole ``saesim compare A B --json`` of two sae-lens folders of
  65,536 latents with encoders (decoders and encoders sharing the same half of
  their latents, as in ``matching``), run right after the 65,536 ``mmcs`` case
  so that the two sit side by side: loading, decoder and encoder scans and
  matchings, shared latents and the random baseline; its memory is reported
  above the decoders (``saesim compare`` reads the encoders from the files
  chunk by chunk rather than holding them);
* ``baseline``: the random matching baseline from full-size draws (exact, one
  draw) against draws of 2,048 and 1,024 latents a side, transferred to the
  full size (three draws each), at 4,096 / 8,192 / 16,384 latents and d = 576
  and 2,304.

Decoders are Gaussian float32, d = 2,304 (Gemma-2-2B's residual width). Writes
``benchmarks/results/compare.csv`` and ``benchmarks/results/compare.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
D = 2304
TILE = 4096
# the notebook approach needs ~ 2 n^2 float32 (cosines + their abs) plus copies
NOTEBOOK_LIMIT_GB = 8.0


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def decoders(n: int, d: int, seed: int, shared: float = 0.0):
    """Two Gaussian decoders [n, d]; with ``shared`` > 0 that fraction of B is noisy copies of A's rows."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d), dtype=np.float32)
    b = rng.standard_normal((n, d), dtype=np.float32)
    k = int(shared * n)
    if k:
        src = rng.choice(n, size=k, replace=False)
        b[:k] = a[src] + 0.5 * rng.standard_normal((k, d), dtype=np.float32)
        b = b[rng.permutation(n)]
    return a, b


def gemm_rates(a, b, max_tiles: int) -> tuple[float, float]:
    """fp32 GEMM rate of torch.matmul on [TILE, d] x [d, TILE] tiles of (a, b) into one output buffer.

    Returns (GFLOP per wall second, GFLOP per CPU second of this process). On a
    shared machine the second is the steadier one: it does not count time other
    processes held the cores.
    """
    import torch

    A, B = torch.from_numpy(a), torch.from_numpy(b)
    r, c = min(TILE, len(a)), min(TILE, len(b))
    out = torch.empty(r, c)
    pairs = [(i, j) for i in range(0, len(a), TILE) for j in range(0, len(b), TILE)][:max_tiles]
    torch.matmul(A[:r], B[:c].T, out=out)  # warm-up
    flops, w0, c0 = 0.0, time.perf_counter(), time.process_time()
    for i, j in pairs:
        x, y = A[i : i + TILE], B[j : j + TILE]
        if x.shape[0] != r or y.shape[0] != c:
            continue
        torch.matmul(x, y.T, out=out)
        flops += 2.0 * r * c * a.shape[1]
    return flops / (time.perf_counter() - w0) / 1e9, flops / (time.process_time() - c0) / 1e9


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


# --------------------------------------------------------------------------
# Cases (each runs in its own process)
# --------------------------------------------------------------------------


def case_mmcs(n: int, d: int) -> dict:
    from saesim.similarity import max_abs_cosine

    a, b = decoders(n, d, seed=0)
    base = rss_mb()
    g1 = gemm_rates(a, b, 6)
    with Clock() as t:
        r = max_abs_cosine(a, b)
    g2 = gemm_rates(a, b, 6)
    flops = 2.0 * n * n * d / 1e9
    gemm_wall, gemm_cpu = 0.5 * (g1[0] + g2[0]), 0.5 * (g1[1] + g2[1])
    return dict(seconds=t.wall, cpu_seconds=t.cpu, gflops=flops / t.wall, gemm_gflops=gemm_wall,
                pct_of_gemm=100.0 * flops / t.wall / gemm_wall,
                gflops_per_cpu_s=flops / t.cpu, gemm_gflops_per_cpu_s=gemm_cpu,
                pct_of_gemm_cpu=100.0 * flops / t.cpu / gemm_cpu,
                gemm_before=g1[0], gemm_after=g2[0], value=r.mmcs, rss_before_mb=base)


def case_matching(n: int, d: int) -> dict:
    from saesim import similarity as S

    a, b = decoders(n, d, seed=0, shared=0.5)
    base = rss_mb()
    with Clock() as t1:
        top = S.top_abs_cosines(a, b, S.DEFAULT_TOP_M)
    with Clock() as t2:
        m = S.one_to_one_matching(a, b, candidates=top)
    return dict(seconds=t1.wall + t2.wall, cpu_seconds=t1.cpu + t2.cpu, scan_seconds=t1.wall, assign_seconds=t2.wall,
                gflops=2.0 * n * n * d / t1.wall / 1e9, value=m.mean_matched_cos, exact=m.exact, rss_before_mb=base)


def case_notebook(n: int, d: int) -> dict:
    import torch

    a, b = decoders(n, d, seed=0)
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    A, B = torch.from_numpy(a), torch.from_numpy(b)
    an = A / A.norm(dim=1, keepdim=True)
    bn = B / B.norm(dim=1, keepdim=True)
    tg = time.perf_counter()
    cos = an @ bn.T
    tg = time.perf_counter() - tg
    ab = cos.abs()
    v1, _ = ab.max(dim=1)
    v0, _ = ab.max(dim=0)
    value = 0.5 * (v1.mean().item() + v0.mean().item())
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(seconds=secs, cpu_seconds=cpu, gflops=2.0 * n * n * d / secs / 1e9,
                gemm_gflops=2.0 * n * n * d / tg / 1e9, value=value, rss_before_mb=base)


def case_exact_vs_sparse(n: int, d: int, shared: float) -> dict:
    from saesim.similarity import one_to_one_matching

    a, b = decoders(n, d, seed=1, shared=shared)
    base = rss_mb()
    t0 = time.perf_counter()
    ex = one_to_one_matching(a, b, exact=True)
    t1 = time.perf_counter()
    sp = one_to_one_matching(a, b, exact=False)
    t2 = time.perf_counter()
    return dict(seconds=t2 - t1, exact_seconds=t1 - t0, value=sp.mean_matched_cos, exact_value=ex.mean_matched_cos,
                diff=ex.mean_matched_cos - sp.mean_matched_cos, rss_before_mb=base)


def sae_folders(root: str, n: int, d: int) -> tuple[str, str]:
    """Paths of the two SAE folders of the ``cli`` case (written by ``case_cli_prepare``)."""
    return os.path.join(root, f"a_{n}_{d}"), os.path.join(root, f"b_{n}_{d}")


def case_cli_prepare(n: int, d: int, root: str) -> dict:
    """Write two sae-lens folders; B's first half are noisy copies of A's latents (decoder and encoder), shuffled."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    folders = sae_folders(root, n, d)
    dec_a = rng.standard_normal((n, d), dtype=np.float32)
    enc_a = rng.standard_normal((n, d), dtype=np.float32)  # encoder directions as rows
    k = n // 2
    src = rng.choice(n, size=k, replace=False)
    perm = rng.permutation(n)
    dec_b = rng.standard_normal((n, d), dtype=np.float32)
    enc_b = rng.standard_normal((n, d), dtype=np.float32)
    dec_b[:k] = dec_a[src] + 0.5 * rng.standard_normal((k, d), dtype=np.float32)
    enc_b[:k] = enc_a[src] + 0.5 * rng.standard_normal((k, d), dtype=np.float32)
    for folder, dec, enc in zip(folders, (dec_a, dec_b[perm]), (enc_a, enc_b[perm])):
        os.makedirs(folder, exist_ok=True)
        save_file({"W_dec": dec, "W_enc": np.ascontiguousarray(enc.T), "b_dec": np.zeros(d, np.float32)},
                  os.path.join(folder, "sae_weights.safetensors"))
        with open(os.path.join(folder, "cfg.json"), "w") as f:
            json.dump({"d_in": d, "d_sae": n}, f)
    return dict(seconds=0.0)


def case_cli(n: int, d: int, root: str) -> dict:
    """``saesim compare A B --json`` in this process, on the folders of ``case_cli_prepare``."""
    import contextlib
    import io

    from saesim.cli import main

    a, b = sae_folders(root, n, d)
    base = rss_mb()
    out = io.StringIO()
    with Clock() as t, contextlib.redirect_stdout(out):
        code = main(["compare", a, b, "--json"])
    if code != 0:
        raise RuntimeError(f"saesim compare exited {code}")
    res = json.loads(out.getvalue())
    bl = res["baseline"]
    return dict(seconds=t.wall, cpu_seconds=t.cpu, load_seconds=res["seconds"]["load"], value=res["mmcs"],
                hungarian=res["hungarian_mean_cos"], shared=res["shared_latents_frac"],
                baseline_hungarian=bl["hungarian_mean_cos"], baseline_draw_n=bl["draw_n_a"],
                exact=res["matching_exact"], rss_before_mb=base, weights_mb=4.0 * n * d * 4 / 2**20)


def case_baseline(n: int, d: int, draw_sizes: str) -> dict:
    """Matching baseline of n x n random decoders: one full-size draw against transferred smaller draws."""
    from saesim.similarity import random_decoder_baseline

    kw = dict(with_encoders=False)
    with Clock() as t_full:
        full = random_decoder_baseline(n, n, d, baseline_draws=1, seed=0, baseline_draw_size=None, **kw)
    out = dict(exact_seconds=t_full.wall, exact_value=full["hungarian_mean_cos"], closed_mmcs=full["mmcs"])
    for i, size in enumerate(int(x) for x in draw_sizes.split(",")):
        with Clock() as t:
            b = random_decoder_baseline(n, n, d, baseline_draws=3, seed=1, baseline_draw_size=size, **kw)
        sfx = "" if i == 0 else "_small"
        out.update({f"seconds{sfx}": t.wall, f"value{sfx}": b["hungarian_mean_cos"],
                    f"value_sd{sfx}": b["std"]["hungarian_mean_cos"], f"draw_n{sfx}": b["draw_n_a"],
                    f"diff{sfx}": b["hungarian_mean_cos"] - full["hungarian_mean_cos"]})
    return out


CASES = {"mmcs": case_mmcs, "matching": case_matching, "notebook": case_notebook}


def child(argv: list[str]) -> None:
    import torch

    kind, n, d = argv[0], int(argv[1]), int(argv[2])
    torch.set_num_threads(os.cpu_count() or 1)
    if kind.startswith("exact_vs_sparse"):
        out = case_exact_vs_sparse(n, d, shared=float(argv[3]))
    elif kind == "cli_prepare":
        out = case_cli_prepare(n, d, argv[3])
    elif kind == "cli":
        out = case_cli(n, d, argv[3])
    elif kind.startswith("baseline"):
        out = case_baseline(n, d, argv[3])
    else:
        out = CASES[kind](n, d)
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_avg_end"] = os.getloadavg()[0]
    print("RESULT " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------


def run_case(kind: str, n: int, d: int, *extra: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, str(n), str(d), *extra]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    row = {"case": kind, "n": n, "d": d, "wall_s": wall, "load_avg_start": load0}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            row.update(json.loads(line[7:]))
    if p.returncode != 0 or "peak_rss_mb" not in row:
        row["error"] = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
    row["decoders_mb"] = 2.0 * n * d * 4 / 2**20
    if "peak_rss_mb" in row and "rss_before_mb" in row:
        row["extra_rss_mb"] = row["peak_rss_mb"] - row["rss_before_mb"]
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return row


def cli_scan_row(rows: list[dict], n: int) -> dict | None:
    """The mean-max-cos scan run right before the ``n`` CLI case: ``cli_scan`` (a --cli-only rerun), else ``mmcs``."""
    for case in ("cli_scan", "mmcs"):
        m = next((m for m in rows if m["case"] == case and m["n"] == n and "seconds" in m), None)
        if m:
            return m
    return None


def fmt(v, nd=1):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def write_outputs(rows: list[dict], sizes: list[int], started: float, results: Path = RESULTS,
                  closing: str | None = None) -> None:
    results.mkdir(parents=True, exist_ok=True)
    cols = ["case", "n", "d", "seconds", "cpu_seconds", "gflops", "gemm_gflops", "pct_of_gemm", "gflops_per_cpu_s",
            "gemm_gflops_per_cpu_s", "pct_of_gemm_cpu", "scan_seconds", "assign_seconds", "exact_seconds", "value",
            "exact_value", "diff", "peak_rss_mb", "rss_before_mb", "extra_rss_mb", "decoders_mb", "wall_s",
            "gemm_before", "gemm_after", "load_avg_start", "load_avg_end", "exact", "error",
            # cli
            "load_seconds", "hungarian", "shared", "baseline_hungarian", "baseline_draw_n", "weights_mb",
            "extra_over_weights_mb", "ratio_to_scan", "cpu_ratio_to_scan", "above_decoders_mb",
            # baseline
            "closed_mmcs", "value_sd", "draw_n", "seconds_small", "value_small", "value_sd_small", "draw_n_small",
            "diff_small"]
    for r in rows:
        if r["case"] == "cli" and "seconds" in r:
            scan = cli_scan_row(rows, r["n"])
            r["extra_over_weights_mb"] = r["peak_rss_mb"] - r["rss_before_mb"] - r["weights_mb"]
            r["above_decoders_mb"] = r["peak_rss_mb"] - r["rss_before_mb"] - r["decoders_mb"]
            if scan:
                r["ratio_to_scan"] = r["seconds"] / scan["seconds"]
                r["cpu_ratio_to_scan"] = r["cpu_seconds"] / scan["cpu_seconds"]
    with open(results / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})

    by = {(r["case"], r["n"]): r for r in rows}
    loads = [r[k] for r in rows for k in ("load_avg_start", "load_avg_end") if isinstance(r.get(k), float)]
    lines = [
        f"Two Gaussian decoders of n latents x d = {D} (float32); {platform.machine()}, {os.cpu_count()} cores, "
        f"torch fp32 on CPU; a fresh process per case (peak RSS = its ru_maxrss). GEMM = torch.matmul on the "
        f"same {TILE} x {D} x {TILE} tiles, in the same process just before and after (mean). The machine was "
        f"shared: 1-minute load average {min(loads, default=0):.1f} to {max(loads, default=0):.1f} on "
        f"{os.cpu_count()} cores, so wall-clock rates are low and noisy; rates per CPU-second of the process "
        "are the steadier comparison.",
        "",
        "| n | mean-max-cos s | GFLOP/s | GEMM GFLOP/s | % of GEMM (wall) | % of GEMM (CPU time) "
        "| peak RSS GB (decoders) | one-to-one s (scan + assign) | peak RSS GB | notebook s | notebook peak RSS GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    gb = lambda x: f"{x / 1024:.2f}" if isinstance(x, float) else ""  # noqa: E731
    for n in sizes:
        m, mt, nb = by.get(("mmcs", n), {}), by.get(("matching", n), {}), by.get(("notebook", n), {})
        if "seconds" in m:
            mm = (f"{fmt(m['seconds'])} | {fmt(m['gflops'], 0)} | {fmt(m['gemm_gflops'], 0)} | "
                  f"{fmt(m['pct_of_gemm'], 0)}% | {fmt(m['pct_of_gemm_cpu'], 0)}% | "
                  f"{gb(m['peak_rss_mb'])} ({gb(m['decoders_mb'])})")
        else:
            mm = f"{m.get('error', 'not run')} | | | | | "
        one = (f"{fmt(mt.get('seconds'))} ({fmt(mt.get('scan_seconds'))} + {fmt(mt.get('assign_seconds'))})"
               if "seconds" in mt else mt.get("error", "not run"))
        if nb:
            nbs = fmt(nb.get("seconds")) if "seconds" in nb else nb.get("error", "failed")
            nbr = gb(nb.get("peak_rss_mb"))
        else:
            need = 2 * n * n * 4 / 2**30 + 4 * n * D * 4 / 2**30
            nbs, nbr = f"not run (needs ~{need:.0f} GB)", ""
        lines.append(f"| {n:,} | {mm} | {one} | {gb(mt.get('peak_rss_mb'))} | {nbs} | {nbr} |")
    ev = [r for r in rows if r["case"].startswith("exact_vs_sparse")]
    if ev:
        lines += ["", "| pair (n = {:,}) | exact Hungarian s | mean matched \\|cos\\| | top-16 sparse s | mean matched \\|cos\\| | difference |".format(ev[0]["n"]),
                  "|---|---:|---:|---:|---:|---:|"]
        for r in ev:
            label = "random decoders" if r["case"].endswith("_0") else "half the latents shared (noisy copies)"
            if "diff" in r:
                lines.append(f"| {label} | {fmt(r['exact_seconds'])} | {r['exact_value']:.5f} | {fmt(r['seconds'])} "
                             f"| {r['value']:.5f} | {r['diff']:.1e} |")
            else:
                lines.append(f"| {label} | {r.get('error', 'failed')} | | | | |")
    for r in (r for r in rows if r["case"] == "cli"):
        n = r["n"]
        scan = cli_scan_row(rows, n) or {}
        lines += ["", f"Whole `saesim compare A B --json`, two sae-lens folders of {n:,} latents x d = {r['d']:,} with "
                  "encoders (half the latents shared), in the process right after the mean-max-cos scan above; "
                  "above the decoders = peak RSS - RSS before loading - the two decoders (the encoders are read "
                  "from the files chunk by chunk, not held):", "",
                  "| n | CLI s (load) | CPU s | mean-max-cos scan s (CPU s) | ratio wall (CPU) | peak RSS GiB "
                  "| SAE weights GiB (decoders) | above the decoders GiB | random one-to-one (drawn at) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        if "seconds" in r:
            lines.append(
                f"| {n:,} | {fmt(r['seconds'])} ({fmt(r['load_seconds'])}) | {fmt(r['cpu_seconds'])} "
                f"| {fmt(scan.get('seconds'))} ({fmt(scan.get('cpu_seconds'))}) "
                f"| {fmt(r.get('ratio_to_scan'), 2)} ({fmt(r.get('cpu_ratio_to_scan'), 2)}) | {gb(r['peak_rss_mb'])} "
                f"| {gb(r['weights_mb'])} ({gb(r['weights_mb'] / 2)}) | {gb(r['above_decoders_mb'])} "
                f"| {r['baseline_hungarian']:.5f} ({r['baseline_draw_n']:,}) |")
        else:
            lines.append(f"| {n:,} | {r.get('error', 'failed')} | | | | | | | |")
    bl = [r for r in rows if r["case"] == "baseline"]
    if bl:
        lines += ["", "Random one-to-one baseline (mean matched \\|cos\\| of two random n x d decoders): one "
                  "full-size draw (exact matching as `saesim compare` does it) against three draws of fewer latents, "
                  "transferred to n (`transfer_abs_cosine`); closed-form mean max \\|cos\\| for scale:", "",
                  "| n | d | full-size draw (s) | drawn at | transferred (s) | difference | drawn at | transferred "
                  "| difference | mean max \\|cos\\| |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in bl:
            if "diff" in r:
                lines.append(
                    f"| {r['n']:,} | {r['d']:,} | {r['exact_value']:.5f} ({fmt(r['exact_seconds'])}) "
                    f"| {r['draw_n']:,} | {r['value']:.5f} ({fmt(r['seconds'])}) | {r['diff']:+.5f} "
                    f"| {r['draw_n_small']:,} | {r['value_small']:.5f} | {r['diff_small']:+.5f} | {r['closed_mmcs']:.5f} |")
            else:
                lines.append(f"| {r['n']:,} | {r['d']:,} | {r.get('error', 'failed')} | | | | | | | |")
    lines += ["", closing or f"Total benchmark time {time.perf_counter() - started:.0f} s. "
              "Produced by `python benchmarks/bench_compare.py`; numbers in `benchmarks/results/compare.csv`."]
    (results / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


INT_COLS = ("n", "d", "baseline_draw_n", "draw_n", "draw_n_small")


def read_rows(path: Path) -> list[dict]:
    """Rows of a compare.csv written by :func:`write_outputs`, typed again (empty cells left out)."""
    rows = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            row: dict = {}
            for k, v in rec.items():
                if v == "":
                    continue
                if k in ("case", "error"):
                    row[k] = v
                elif v in ("True", "False"):
                    row[k] = v == "True"
                else:
                    row[k] = int(float(v)) if k in INT_COLS else float(v)
            rows.append(row)
    return rows


def cli_only(n: int, d: int, results: Path) -> None:
    """Rerun the ``n`` CLI case right after a mean-max-cos scan of the same size; merge them into the results.

    The scan is stored as case ``cli_scan`` (the CLI row's ratio is to it); the main table's
    ``mmcs`` rows, from the full run, are kept.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as root:
        prep = run_case("cli_prepare", n, d, root)
        if "error" in prep:
            raise SystemExit(f"cli_prepare failed: {prep['error']}")
        scan = dict(run_case("mmcs", n, d), case="cli_scan")
        cli = run_case("cli", n, d, root)
    merge_cli_rows(results, scan, cli, time.perf_counter() - started)


def merge_cli_rows(results: Path, scan: dict, cli: dict, seconds: float, when=None) -> None:
    """Replace the ``cli``/``cli_scan`` rows of results/compare.csv by these and splice the CLI section,
    with a closing note on the rerun, into results/compare.md (every other line is kept as printed)."""
    import re
    from datetime import datetime, timezone

    n = cli["n"]
    old = read_rows(results / "compare.csv")
    old_md = (results / "compare.md").read_text() if (results / "compare.md").exists() else ""
    total = re.search(r"Total benchmark time (\d+) s", old_md)
    rows = [r for r in old if not (r["case"] in ("cli", "cli_scan") and r["n"] == n)] + [scan, cli]
    sizes = sorted({r["n"] for r in rows if r["case"] == "mmcs"})
    loads = [r[k] for r in (scan, cli) for k in ("load_avg_start", "load_avg_end") if isinstance(r.get(k), float)]
    when = when or datetime.now(timezone.utc)
    closing = ((f"Total benchmark time {total.group(1)} s (full run). " if total else "")
               + f"The CLI row and the {n:,} mean-max-cos scan beside it are a rerun of {when:%Y-%m-%d %H:%M} UTC "
               f"(`python benchmarks/bench_compare.py --cli-only`, {seconds:.0f} s, 1-minute load average "
               f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f} on {os.cpu_count()} cores); the other "
               "rows are from the full run. Numbers in `benchmarks/results/compare.csv`.")
    with tempfile.TemporaryDirectory() as tmp:
        write_outputs(rows, sizes, time.perf_counter(), Path(tmp), closing=closing)
        shutil.copy(Path(tmp) / "compare.csv", results / "compare.csv")
        fresh = (Path(tmp) / "compare.md").read_text()
    (results / "compare.md").write_text(splice_md(old_md, fresh) if old_md else fresh)


def splice_md(old: str, new: str) -> str:
    """``old`` compare.md with its CLI section and closing line taken from ``new`` (the other lines keep
    their printed digits: re-rendering them from the rounded CSV could move a last digit)."""
    o, w = old.splitlines(), new.splitlines()

    def block(lines):
        a = next((k for k, x in enumerate(lines) if x.startswith("Whole `saesim compare")), None)
        b = next((k for k, x in enumerate(lines) if x.startswith("Random one-to-one")), len(lines) - 1)
        return a, b

    (a, b), (c, e) = block(o), block(w)
    if a is not None and c is not None:
        o[a:b] = w[c:e]
    o[-1] = w[-1]
    return "\n".join(o) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes to check the script (results not written)")
    ap.add_argument("--cli-only", action="store_true",
                    help="only the largest mean-max-cos scan and the whole-CLI case after it, replacing those rows "
                         "of the existing results (with --quick: tiny, into a copy of them, not written)")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.cli_only:
        if not args.quick:
            cli_only(65536, D, RESULTS)
            return
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("compare.csv", "compare.md"):
                shutil.copy(RESULTS / name, Path(tmp) / name)
            cli_only(2048, 64, Path(tmp))
        print("quick run: results not written")
        return
    if args.quick:
        sizes, d, ev_n = [1024, 2048], 64, 1024
    else:
        sizes, d, ev_n = [16384, 32768, 65536], D, 8192
    if args.quick:
        baseline_cases, draw_sizes = [(1024, 64), (2048, 64)], "256,128"
    else:
        baseline_cases, draw_sizes = [(n, dd) for dd in (576, D) for n in (4096, 8192, 16384)], "2048,1024"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as root:
        for n in sizes:
            if n == sizes[-1]:  # the whole CLI comparison, right after the scan it is measured against
                prep = run_case("cli_prepare", n, d, root)
                if "error" in prep:
                    rows.append(prep)
            rows.append(run_case("mmcs", n, d))
            if n == sizes[-1]:
                rows.append(run_case("cli", n, d, root))
                shutil.rmtree(root, ignore_errors=True)
            notebook_gb = (2 * n * n * 4 + 4 * n * d * 4) / 2**30
            if notebook_gb <= NOTEBOOK_LIMIT_GB:
                rows.append(run_case("notebook", n, d))
            rows.append(run_case("matching", n, d))
    for shared in ("0", "0.5"):
        rows.append(run_case(f"exact_vs_sparse_{shared}", ev_n, d, shared))
    for n, dd in baseline_cases:
        rows.append(run_case("baseline", n, dd, draw_sizes))
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            write_outputs(rows, sizes, started, Path(tmp))
        print("quick run: results not written")
        return
    write_outputs(rows, sizes, started)


if __name__ == "__main__":
    main()
