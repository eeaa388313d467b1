"""MkDocs hook: the checks of ``python -m saesim.docsgen --check`` as build warnings.

So ``mkdocs build --strict`` fails when a config key has no description, a public name has no
docstring, or a generated page (configuration reference, API reference) is stale.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.saesim")


def on_pre_build(config, **kwargs) -> None:
    src = Path(config["docs_dir"]).resolve().parent / "src"
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    from saesim import docsgen

    for problem in docsgen.problems():
        log.warning(problem)


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(<code>)~?")


def on_page_content(html: str, **kwargs) -> str:
    """Docstrings use Sphinx roles (``:func:`x```); show them as plain code in the API reference."""
    return _ROLE.sub(r"\1", html)
