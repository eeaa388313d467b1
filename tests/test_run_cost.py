"""benchmarks/run_cost.py: per-rule job-seconds from a Snakemake log, on a log with known answers."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_cost", ROOT / "benchmarks" / "run_cost.py")
run_cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_cost)

LOG = """\
Building DAG of jobs...
[Sun Dec  6 09:30:20 2026]
rule train_saes_toy:
    input: results/toy/store.h5
    jobid: 3
    resources: tmpdir=/tmp
[Sun Dec  6 09:30:21 2026]
localrule summary_table:
    jobid: 7
[Sun Dec  6 09:31:20 2026]
Finished jobid: 3 (Rule: train_saes_toy)
[Sun Dec  6 09:31:31 2026]
Finished jobid: 7 (Rule: summary_table)
[Sun Dec  6 09:31:31 2026]
rule train_saes_toy:
    jobid: 4
[Sun Dec  6 09:32:01 2026]
Finished jobid: 4 (Rule: train_saes_toy)
[Sun Dec  6 09:32:02 2026]
rule compare_seed_pair:
    jobid: 9
"""


def test_job_seconds_per_rule_and_wall_on_a_known_log():
    costs, wall, unfinished = run_cost.rule_costs(LOG.splitlines())
    assert costs == {"train_saes_toy": (2, 90.0), "summary_table": (1, 70.0)}
    assert wall == 102.0
    assert unfinished == ["compare_seed_pair"]
    table = run_cost.markdown(costs, wall)
    assert "| train_saes_toy | 2 | 90 | 56.2% |" in table
    assert "| **all** | 3 | 160 | |" in table


def test_cli_names_a_missing_log(tmp_path, capsys):
    assert run_cost.main([str(tmp_path / "none.log")]) == 2
    assert "none.log: no such log file" in capsys.readouterr().err
