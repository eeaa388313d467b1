"""Which library code a rule script runs, and one hash of it: the ``code`` param of every rule.

A rule's script is parsed (``ast``, nothing is imported) and every import of the
package (``saesim``) is followed transitively through the package's own modules:
absolute imports (``import saesim.x``, ``from saesim.x import y``), relative
imports (``from . import x``, ``from ..errors import E``) and imports inside
functions alike. Importing a submodule runs its parent packages' ``__init__.py``,
so those count too. Third-party and standard-library imports are ignored.

The hash covers the file contents and their package-relative names only (never
an absolute path), so a project folder moved elsewhere keeps its hashes, and an
edit to a module changes exactly the hashes of the scripts that import it.

Kept free of heavy imports: the Snakefile imports this module at parse time.

    python -m saesim.workflow.codehash scripts/build_corpus.py   # the modules it runs, and its hash
"""

from __future__ import annotations

import ast
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

from saesim.errors import SaesimError

PACKAGE = "saesim"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _module_file(package_dir: Path, name: str) -> Path | None:
    """The file of module ``name`` (dotted, starting with the package name), or None if no such module."""
    parts = name.split(".")[1:]
    base = package_dir.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if parts and base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _with_parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a module runs its parent packages first."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _imported_names(tree: ast.AST, module: str | None, is_package: bool, package: str) -> set[str]:
    """Dotted names of the ``package`` modules (or candidate names) that ``tree`` imports.

    ``module`` is the dotted name of the file parsed (None for a script outside
    the package, where relative imports cannot occur).
    """
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    out.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                here = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 > len(here) - 1:
                    continue  # beyond the top of the package
                base_parts = here[: len(here) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != package and not base.startswith(package + "."):
                continue
            out.update(_with_parents(base))
            # ``from pkg import name``: name may be a submodule (kept if a file exists) or an attribute
            out.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return out


@lru_cache(maxsize=None)
def _imports_of(source: bytes, filename: str, module: str | None, is_package: bool, package: str) -> frozenset[str]:
    """:func:`_imported_names` of one file's contents, parsed once per process.

    A DAG build hashes about 60 scripts whose import closures share most modules;
    keyed by the contents (not the path), so an edited file is parsed again.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as err:
        raise SaesimError(f"{filename}: cannot be parsed for its imports ({err.msg}, line {err.lineno})") from None
    return frozenset(_imported_names(tree, module, is_package, package))


def _file_imports(path: Path, module: str | None, is_package: bool, package: str) -> frozenset[str]:
    return _imports_of(path.read_bytes(), path.name, module, is_package, package)


def module_files(script: str | Path, package_dir: str | Path = PACKAGE_DIR, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` that running ``script`` imports, transitively.

    Returns ``{package-relative name: file}``, e.g. ``{"saesim/workflow/rulekit.py": Path(...)}``,
    sorted by name. ``package_dir`` is the package's folder (holding ``__init__.py``).
    """
    script, package_dir = Path(script), Path(package_dir)
    if not script.is_file():
        raise SaesimError(f"{script}: rule script not found")
    seen: dict[str, Path] = {}
    todo = sorted(_file_imports(script, None, False, package))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(package_dir, name)
        if path is None:
            continue  # an attribute imported with ``from pkg import name``, not a module
        seen[name] = path
        todo.extend(sorted(_file_imports(path, name, path.name == "__init__.py", package) - set(seen)))
    files = {f"{package}/{p.relative_to(package_dir).as_posix()}": p for p in seen.values()}
    return dict(sorted(files.items()))


def code_hash(script: str | Path, package_dir: str | Path = PACKAGE_DIR, package: str = PACKAGE) -> str:
    """Hash of a rule script and every package module it imports (contents and relative names).

    Independent of where the project lies; changes when the script or any module
    it imports, directly or through other modules, changes.
    """
    script = Path(script)
    h = hashlib.sha256()
    entries = {f"scripts/{script.name}": script, **module_files(script, package_dir, package)}
    for name, path in entries.items():
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


@lru_cache(maxsize=None)
def cached_code_hash(script: str, package_dir: str) -> str:
    """:func:`code_hash` once per (script, package) within one process (one Snakemake DAG build)."""
    return code_hash(script, package_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for script in argv:
        print(f"{script}: {code_hash(script)}")
        for name in module_files(script):
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
