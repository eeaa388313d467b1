"""The code hash of a rule: the script and the package modules it imports, transitively."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from saesim.workflow.codehash import code_hash, module_files
from saesim.errors import SaesimError

ROOT = Path(__file__).resolve().parents[1]

#: a fake package: the script imports ``a`` (absolute) and, inside a function, ``sub``;
#: ``a`` imports ``b`` relatively, ``sub/__init__`` imports ``sub/leaf`` with ``from . import``,
#: ``sub/leaf`` reaches ``util`` two levels up; ``unused`` is imported by nobody;
#: ``attr_only`` is named by a ``from pkg import name`` where the name is an attribute.
FAKE = {
    "pkg/__init__.py": '"""top"""\n',
    "pkg/a.py": "from .b import f\nimport numpy\n",
    "pkg/b.py": "def f():\n    return 1\n",
    "pkg/sub/__init__.py": "from . import leaf\nfrom .leaf import THING\n",
    "pkg/sub/leaf.py": "def g():\n    from ..util import h\n    return h()\nTHING = 1\n",
    "pkg/util.py": "def h():\n    return 2\n",
    "pkg/unused.py": "X = 1\n",
    "pkg/other.py": "from pkg import unused\n",
    "scripts/job.py": (
        "import sys\nimport pkg.a\nfrom pkg.sub import THING\n\n"
        "def main():\n    from pkg import sub\n    return sub\n"
    ),
    "scripts/light.py": "from pkg.b import f\n",
}


@pytest.fixture
def tree(tmp_path):
    for rel, text in FAKE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def h(tree, script="job"):
    return code_hash(tree / "scripts" / f"{script}.py", tree / "pkg", package="pkg")


def test_closure_follows_absolute_relative_and_function_level_imports(tree):
    files = module_files(tree / "scripts/job.py", tree / "pkg", package="pkg")
    assert list(files) == [
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/sub/__init__.py",
        "pkg/sub/leaf.py",
        "pkg/util.py",
    ]
    assert list(module_files(tree / "scripts/light.py", tree / "pkg", package="pkg")) == ["pkg/__init__.py", "pkg/b.py"]


@pytest.mark.parametrize("module", ["pkg/b.py", "pkg/util.py", "pkg/sub/leaf.py", "pkg/__init__.py", "scripts/job.py"])
def test_editing_a_transitively_imported_module_changes_the_hash(tree, module):
    before = h(tree)
    with open(tree / module, "a") as f:
        f.write("# an edit\n")
    assert h(tree) != before


@pytest.mark.parametrize("module", ["pkg/unused.py", "pkg/other.py", "scripts/light.py"])
def test_editing_an_unrelated_module_keeps_the_hash(tree, module):
    before = h(tree)
    with open(tree / module, "a") as f:
        f.write("# an edit\n")
    assert h(tree) == before


def test_an_edit_changes_only_the_hashes_of_scripts_that_import_it(tree):
    job, light = h(tree), h(tree, "light")
    (tree / "pkg/util.py").write_text("def h():\n    return 3\n")
    assert h(tree) != job and h(tree, "light") == light


def test_hash_does_not_depend_on_where_the_project_lies(tree, tmp_path_factory):
    moved = tmp_path_factory.mktemp("elsewhere") / "deeper" / "moved"
    shutil.copytree(tree, moved)
    assert h(moved) == h(tree)
    assert h(moved, "light") == h(tree, "light")


def test_a_renamed_module_changes_the_hash(tree):
    before = h(tree)
    (tree / "pkg/b.py").rename(tree / "pkg/c.py")
    (tree / "pkg/a.py").write_text("from .c import f\nimport numpy\n")
    (tree / "scripts/job.py").write_text(FAKE["scripts/job.py"])  # same script text
    assert h(tree) != before


def test_unparsable_module_names_the_file(tree):
    (tree / "pkg/b.py").write_text("def f(:\n")
    with pytest.raises(SaesimError, match=r"^b\.py: cannot be parsed"):
        h(tree)


def test_missing_script_names_it(tree):
    with pytest.raises(SaesimError, match="nope.py: rule script not found"):
        code_hash(tree / "scripts/nope.py", tree / "pkg", package="pkg")


def test_a_package_split_into_stage_modules_is_followed(tmp_path):
    """The layout of saesim.similarity: ``__init__`` re-exports from its last stage, which
    imports the earlier ones as siblings (``from .first import``); a script that imports only
    the package name hashes every stage, and an edit to the first stage changes its hash."""
    files = {
        "pkg/__init__.py": "",
        "pkg/stage/__init__.py": "from .last import (\n    run,\n)\n",
        "pkg/stage/last.py": "from .middle import step\n\ndef run():\n    return step()\n",
        "pkg/stage/middle.py": "from .first import helper\nfrom ..util import h\n\ndef step():\n    return helper() + h()\n",
        "pkg/stage/first.py": "def helper():\n    return 1\n",
        "pkg/util.py": "def h():\n    return 2\n",
        "scripts/job.py": "from pkg.stage import run\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert list(module_files(tmp_path / "scripts/job.py", tmp_path / "pkg", package="pkg")) == [
        "pkg/__init__.py",
        "pkg/stage/__init__.py",
        "pkg/stage/first.py",
        "pkg/stage/last.py",
        "pkg/stage/middle.py",
        "pkg/util.py",
    ]
    before = h(tmp_path)
    (tmp_path / "pkg/stage/first.py").write_text("def helper():\n    return 3\n")
    assert h(tmp_path) != before


def test_real_scripts_hash_the_modules_they_run():
    """Known answers on the real package: the rerun holes of the hand-typed lists are closed."""
    pkg = ROOT / "src" / "saesim"
    corpus = module_files(ROOT / "scripts/build_corpus.py", pkg)
    assert {"saesim/similarity/universality/filters.py", "saesim/sources/corpus.py", "saesim/sources/language.py", "saesim/workflow/rulekit.py"} <= set(corpus)
    compare = module_files(ROOT / "scripts/compare_by_activations.py", pkg)
    assert "saesim/stores/activation_store.py" in compare
    # saesim.similarity is a package of stages: a script importing from the package hashes them all
    pair = module_files(ROOT / "scripts/compare_seed_pair.py", pkg)
    stages = ("__init__", "scan", "matching", "baseline", "decoders")
    assert {f"saesim/similarity/{m}.py" for m in stages} <= set(pair)
    # no rule script runs the CLI or the config validation
    for script in (ROOT / "scripts").glob("*.py"):
        names = set(module_files(script, pkg))
        assert "saesim/cli.py" not in names and "saesim/workflow/config.py" not in names, script.name


def test_a_rule_without_its_code_hash_stops_the_dag_build(tmp_path):
    """Every scripted rule must carry code=code_of(its script): a rule whose code param names
    another script is refused at parse time with one line naming the rule and the fix."""
    import subprocess
    import sys

    from workflow_helpers import SMALL, copy_workflow

    work = copy_workflow(tmp_path / "wf", SMALL)
    figures = work / "workflow/rules/figures.smk"
    text = figures.read_text()
    assert text.count('code=code_of("scripts/plot_seed_heatmap.py")') == 1
    figures.write_text(text.replace('code=code_of("scripts/plot_seed_heatmap.py")', 'code=code_of("scripts/plot_grokking.py")'))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "params of rule plot_seed_heatmap need code=code_of('scripts/plot_seed_heatmap.py')" in proc.stdout + proc.stderr
