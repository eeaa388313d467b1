"""The documentation site: generated pages current, every config key and public name documented,
every runnable example in docs/*.md runs, the README short and its links alive.

The strict site build itself (``mkdocs build --strict``) runs in CI through ``make docs``.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from saesim import docsgen

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# --------------------------------------------------------------------------- code blocks
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
RUNNABLE = ("python", "bash")
NOTEST = "<!-- notest"
# what a scratch directory needs to look like a clone for the examples
CLONE_PATHS = ("src", "scripts", "workflow", "config", "config.yaml", "Snakefile")


def code_blocks(markdown: str) -> list[tuple[str, str, bool]]:
    """(language, code, runnable) of every fenced block; runnable unless the line before is ``<!-- notest...``."""
    out = []
    for m in FENCE.finditer(markdown):
        before = markdown[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        lang = m.group(1)
        out.append((lang, m.group(2), lang in RUNNABLE and not before.startswith(NOTEST)))
    return out


def test_code_block_extraction_known_answer():
    md = textwrap.dedent(
        """\
        text
        ```python
        print(1)
        ```
        <!-- notest: online -->
        ```bash
        curl example.org
        ```
        ```yaml
        a: 1
        ```
        ```bash
        echo hi
        ```
        """
    )
    blocks = code_blocks(md)
    assert [(lang, run) for lang, _, run in blocks] == [("python", True), ("bash", False), ("yaml", False), ("bash", True)]
    assert blocks[0][1] == "print(1)\n"


def _pages_with_examples() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if any(run for _, _, run in code_blocks(p.read_text())))


def test_docs_have_runnable_examples():
    # the examples a new user meets first are run, not skipped
    pages = {p.name for p in _pages_with_examples()}
    assert {"getting-started.md", "metrics.md", "configuring.md"} <= pages


@pytest.mark.parametrize("page", _pages_with_examples(), ids=lambda p: p.name)
def test_docs_examples_run(page, tmp_path):
    """Every runnable python/bash block of a page, in order, in one scratch directory that looks like a clone."""
    for name in CLONE_PATHS:
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    env["HF_HUB_OFFLINE"] = "1"
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for i, (lang, code, runnable) in enumerate(code_blocks(page.read_text())):
        if not runnable:
            continue
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, (
            f"{page.name}: {lang} block {i} failed (exit {proc.returncode}):\n{code}\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )


def _merged_with_default(block: dict) -> dict:
    """The default config.yaml with a docs YAML example merged in (examples are often fragments)."""
    import yaml

    def merge(a: dict, b: dict) -> dict:
        for key, value in b.items():
            if isinstance(value, dict) and isinstance(a.get(key), dict):
                merge(a[key], value)
            else:
                a[key] = value
        return a

    return merge(yaml.safe_load((ROOT / "config.yaml").read_text()), block)


def _yaml_examples() -> list[tuple[str, int, str]]:
    """Every ```yaml block of the docs (but the generated reference and blocks marked ``<!-- notest``)."""
    out = []
    for p in sorted(DOCS.glob("*.md")):
        text = p.read_text()
        for i, m in enumerate(FENCE.finditer(text)):
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            if m.group(1) == "yaml" and not before.startswith(NOTEST) and not p.name.startswith("configuration-reference"):
                out.append((p.name, i, m.group(2)))
    return out


def test_yaml_examples_validate():
    """Every YAML example in the docs, merged into the default config, passes the workflow's validation."""
    import yaml

    from saesim.workflow.config import validate_config

    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    examples = _yaml_examples()
    assert len(examples) >= 5
    for page, i, code in examples:
        validate_config(_merged_with_default(yaml.safe_load(code)), schema, source=f"{page} yaml block {i}")
    # and the check can fail: a typo'd key in an example is refused
    from saesim.errors import SaesimError

    bad = {"experiments": {"toy": {"sae": {"trainig": {"lr": 0.01}}}}}
    with pytest.raises(SaesimError, match="trainig"):
        validate_config(_merged_with_default(bad), schema)


# --------------------------------------------------------------------------- config reference
def test_every_config_key_has_a_description():
    assert docsgen.undocumented_keys() == []


def test_a_key_without_description_is_caught():
    schema = docsgen.load_schema()
    broken = copy.deepcopy(schema)
    broken["$defs"]["training"]["properties"]["new_knob"] = {"type": "integer", "default": 3}
    broken["properties"]["new_top"] = {"type": "string"}
    broken["$defs"]["firing_probability"]["allOf"][0]["then"]["properties"]["new_branch_key"] = {"type": "number"}
    assert docsgen.undocumented_keys(broken) == [
        "top level: new_top",
        "firing_probability: new_branch_key",
        "training: new_knob",
    ]
    # with a description it is documented, and it shows up in the generated page
    broken["$defs"]["training"]["properties"]["new_knob"]["description"] = "A new knob."
    assert "training: new_knob" not in docsgen.undocumented_keys(broken)
    assert "| `new_knob` | integer | `3` |" in docsgen.config_reference(broken)


def test_config_reference_page_is_current():
    page = (DOCS / "configuration-reference.md").read_text()
    assert page == docsgen.config_reference(), "docs/configuration-reference.md is stale: run python -m saesim.docsgen"


def test_config_reference_lists_every_schema_key():
    page = (DOCS / "configuration-reference.md").read_text()
    schema = docsgen.load_schema()
    for name, node in docsgen._sections(schema):
        for path, _cond, _sub in docsgen._walk_keys(node, schema["$defs"], ""):
            assert f"| `{path}` |" in page, f"{name}: {path} missing from the configuration reference"
    # and a few keys a user looks for, with their defaults
    assert "| `training_samples` | integer | `200000` |" in page
    assert "| `memory_budget_mb` | integer | `1024` |" in page


# --------------------------------------------------------------------------- API reference
def test_public_api_is_documented():
    assert docsgen.undocumented_public_api() == []


def test_undocumented_public_name_is_caught(tmp_path):
    pkg = tmp_path / "fakepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        '"""A package."""\nfrom .mod import documented, undocumented, CONST, DOC_CONST\n'
        '__all__ = ["documented", "undocumented", "CONST", "DOC_CONST", "missing"]\n'
    )
    (pkg / "mod.py").write_text(
        '"""A module."""\n\ndef documented():\n    """Yes."""\n\n\ndef undocumented():\n    pass\n\n\n'
        'CONST = 1\nDOC_CONST = 2\n"""Documented constant."""\n'
    )
    (pkg / "private.py").write_text("def nothing():\n    pass\n")  # no __all__: not public
    package = docsgen.load_package("fakepkg", tmp_path)
    assert docsgen.public_modules(package) == ["fakepkg"]
    assert docsgen.undocumented_public_api(package) == [
        "fakepkg.undocumented",
        "fakepkg.CONST",
        "fakepkg.missing (in __all__ but not defined)",
    ]


def test_api_reference_page_is_current_and_covers_public_modules():
    page = (DOCS / "api-reference.md").read_text()
    assert page == docsgen.api_reference(), "docs/api-reference.md is stale: run python -m saesim.docsgen"
    modules = docsgen.public_modules()
    assert "saesim.similarity" in modules and "saesim.similarity.suites" in modules
    for module in modules:
        assert f"\n::: {module}\n" in page


# --------------------------------------------------------------------------- site and README
def test_nav_names_every_page_and_every_page_exists():
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)

    def pages(nav):
        for entry in nav:
            for value in entry.values() if isinstance(entry, dict) else [entry]:
                if isinstance(value, list):
                    yield from pages(value)
                else:
                    yield value

    in_nav = set(pages(config["nav"]))
    on_disk = {p.name for p in DOCS.glob("*.md")}
    assert in_nav == on_disk


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r"\]\(((?:docs/)[^)#\s]+)", readme)
    assert any(link.startswith("docs/") and link.endswith(".md") for link in links)
    for link in links:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
    # the two commands stay what CI and users run
    assert "make run" in readme and "make test" in readme
