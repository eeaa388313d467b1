"""The shape of the code that issue 23 settled, kept by tests: comparisons take one options object,
the rule files call planning directly, and the summary's columns come from the registry."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "saesim"


def _parameter_counts(path: Path) -> dict[str, int]:
    counts = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
            if a.args and a.args[0].arg in ("self", "cls"):
                n -= 1
            counts[f"{path.relative_to(SRC)}:{node.name}"] = n
    return counts


def test_decoder_comparisons_take_one_options_object_not_eight_keywords():
    """Thresholds, budget, top-m, device, draws and seed travel as ComparisonOptions: no function of
    the decoder-comparison modules takes more than 8 parameters (22 functions did in the package,
    10 of them here, before the options object)."""
    long = {
        name: n
        for path in sorted((SRC / "similarity").glob("*.py"))
        for name, n in _parameter_counts(path).items()
        if n > 8
    }
    assert long == {}


def test_common_smk_holds_no_planning_wrappers():
    """Rules call saesim.workflow.planning.Plan directly: common.smk keeps validation, the plan and
    the code-hash params (it had 85 definitions, 55 of them one- or two-line wrappers)."""
    defs = re.findall(r"^def (\w+)", (ROOT / "workflow" / "rules" / "common.smk").read_text(), re.M)
    assert defs == ["code_of", "check_code_params"]


def test_rule_files_write_no_log_path_by_hand():
    """Every log path comes from saesim.workflow.layout.log (46 were literal strings)."""
    hand_written = [
        f"{p.name}:{i}" for p in sorted((ROOT / "workflow").rglob("*.smk"))
        for i, line in enumerate(p.read_text().splitlines(), 1) if "results/logs" in line
    ]
    assert hand_written == []


def test_tables_name_no_measure_column_by_hand():
    """The summary's measure columns come from saesim.registry.metrics: tables.py spells none of the
    registered SAE measures or table metrics (it spelled 48 of them, 158 times)."""
    from saesim.registry.metrics import SAE_MEASURES, TABLE_METRICS

    text = (SRC / "report" / "tables.py").read_text()
    names = [*SAE_MEASURES, *TABLE_METRICS]
    assert len(names) > 20
    spelled = sorted(n for n in names if f'"{n}"' in text or f"'{n}'" in text)
    assert spelled == []
