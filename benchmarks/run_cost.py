"""Where a workflow run's time went: jobs and job-seconds per rule, from a Snakemake log.

Snakemake writes one log per invocation under ``.snakemake/log/``; every job's start ("rule X:
... jobid: N") and end ("Finished jobid: N") carries a timestamp to the second. A job's seconds
are its end minus its start, so on a machine shared with other work they include waiting for a
core: quote them with the machine's load (and the run's user+sys CPU seconds from
``/usr/bin/time -v``), as the README does.

    python benchmarks/run_cost.py .snakemake/log/<the run>.snakemake.log            # markdown table
    python benchmarks/run_cost.py --csv OUT.csv .snakemake/log/<the run>.snakemake.log
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]")
RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):")
JOBID = re.compile(r"^\s+jobid: (\d+)")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


def _when(text: str) -> datetime:
    return datetime.strptime(re.sub(r"\s+", " ", text), "%a %b %d %H:%M:%S %Y")


def rule_costs(lines: list[str]) -> tuple[dict[str, tuple[int, float]], float, list[str]]:
    """Per rule (jobs, job-seconds), the run's wall seconds (first to last stamp), and the rules of
    jobs that started and never finished."""
    now = first = None
    pending_rule = None
    started: dict[str, tuple[str, datetime]] = {}
    seconds: dict[str, float] = defaultdict(float)
    jobs: dict[str, int] = defaultdict(int)
    for line in lines:
        if m := STAMP.match(line):
            now = _when(m.group(1))
            first = first or now
        elif m := RULE.match(line):
            pending_rule = m.group(1)
        elif (m := JOBID.match(line)) and pending_rule:
            started[m.group(1)] = (pending_rule, now)
            pending_rule = None
        elif (m := FINISHED.match(line)) and m.group(1) in started:
            rule, t0 = started.pop(m.group(1))
            seconds[rule] += (now - t0).total_seconds()
            jobs[rule] += 1
    wall = (now - first).total_seconds() if first else 0.0
    return {r: (jobs[r], seconds[r]) for r in seconds}, wall, sorted(r for r, _ in started.values())


def markdown(costs: dict[str, tuple[int, float]], wall: float) -> str:
    total = sum(s for _, s in costs.values())
    rows = ["| rule | jobs | job-seconds | share |", "|---|---:|---:|---:|"]
    for rule, (n, s) in sorted(costs.items(), key=lambda kv: -kv[1][1]):
        rows.append(f"| {rule} | {n} | {s:.0f} | {s / total:.1%} |")
    n_jobs = sum(n for n, _ in costs.values())
    rows.append(f"| **all** | {n_jobs} | {total:.0f} | |")
    return "\n".join(rows) + f"\n\nWall time: {wall / 60:.1f} min ({int(wall // 60)}m{int(wall % 60):02d}s).\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="a Snakemake log (.snakemake/log/*.snakemake.log)")
    parser.add_argument("--csv", type=Path, help="also write rule,jobs,job_seconds to this CSV")
    args = parser.parse_args(argv)
    if not args.log.is_file():
        print(f"{args.log}: no such log file", file=sys.stderr)
        return 2
    costs, wall, unfinished = rule_costs(args.log.read_text().splitlines())
    print(markdown(costs, wall), end="")
    if unfinished:
        print(f"\nStarted but not finished: {', '.join(unfinished)}")
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["rule", "jobs", "job_seconds"])
            for rule, (n, s) in sorted(costs.items()):
                w.writerow([rule, n, f"{s:.0f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
