"""Every report caption is valid reStructuredText: snakemake --report renders them with docutils,
and a bare |cos| there is a substitution reference (the report logs an error and drops the text)."""

import io
from pathlib import Path

import pytest

docutils_core = pytest.importorskip("docutils.core")

CAPTIONS = sorted((Path(__file__).resolve().parents[1] / "workflow" / "report").glob("*.rst"))


def _warnings(text: str) -> str:
    stream = io.StringIO()
    docutils_core.publish_string(text, writer_name="html", settings_overrides={"report_level": 2, "warning_stream": stream})
    return stream.getvalue()


def test_a_bare_bar_pair_is_caught():
    assert "Undefined substitution" in _warnings("best |cos| of a latent")
    assert _warnings(r"best \|cos\| of a latent") == ""


@pytest.mark.parametrize("caption", CAPTIONS, ids=lambda p: p.name)
def test_caption_parses_without_warnings(caption):
    assert _warnings(caption.read_text()) == "", caption
