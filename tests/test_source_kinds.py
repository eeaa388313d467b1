"""The source-kind registry: the schema agrees with it, config validation and the workflow's
rules ask it (not the kind's name), and a newly registered kind is validated like its family."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from saesim.sources import kinds as source_kinds
from saesim.errors import SaesimError
from saesim.sources.kinds import SOURCE_KINDS, SourceKind

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


def _names(cond: dict) -> list[str]:
    kind = cond["properties"]["kind"] if "kind" in cond["properties"] else cond["properties"]["source"]["properties"]["kind"]
    return kind.get("enum") or [kind["const"]]


def test_schema_kind_enum_is_the_registry():
    assert SCHEMA["$defs"]["source"]["properties"]["kind"]["enum"] == list(SOURCE_KINDS)


def test_schema_branch_of_each_kind_is_its_schema_def():
    branch = {}
    for part in SCHEMA["$defs"]["source"]["allOf"]:
        for name in _names(part["if"]):
            branch[name] = part["then"]["$ref"].removeprefix("#/$defs/")
    assert branch == {k.name: k.schema_def for k in SOURCE_KINDS.values()}
    # each block names exactly the kinds that use it
    for block in {k.schema_def for k in SOURCE_KINDS.values()}:
        kind = SCHEMA["$defs"][block]["properties"]["kind"]
        assert sorted(kind.get("enum") or [kind["const"]]) == sorted(k.name for k in SOURCE_KINDS.values() if k.schema_def == block)


def test_schema_experiment_branches_follow_the_registry():
    conds = [(part, _names(part["if"])) for part in SCHEMA["$defs"]["experiment"]["allOf"]]
    imported = [names for part, names in conds if "else" in part and part["else"] == {"required": ["sae"]}]
    assert imported == [list(source_kinds.kinds(trains_saes=False))]
    convergence = [names for part, names in conds if "convergence" in part.get("then", {}).get("properties", {})]
    assert convergence == [list(source_kinds.kinds(language_model=True))]


def test_language_models_have_a_loader_and_the_language_store_rule():
    from saesim.workflow.config import LANGUAGE_KINDS
    from saesim.sources.language import SOURCES

    assert set(SOURCES) == set(LANGUAGE_KINDS) == {"smollm2", "hf", "transformer_lens"}
    assert source_kinds.kinds(store_rule="language") == LANGUAGE_KINDS


def test_queries_known_answers():
    assert source_kinds.kinds(ground_truth=True) == ("toy",)
    assert source_kinds.kinds(fourier=True) == ("modular",)
    assert source_kinds.kinds(store_rule="modular") == ("modular",)
    assert source_kinds.kinds(trains_saes=False) == ("saes",)
    assert source_kinds.kinds(store_n_rows=True) == ("toy", "modular")
    assert source_kinds.hooks_of({"source": {"kind": "toy"}}) == ["toy"]
    assert source_kinds.hooks_of({"source": {"kind": "hf"}, "hooks": ["blocks.0.hook_out"]}) == ["blocks.0.hook_out"]
    assert source_kinds.hooks_of({"source": {"kind": "modular"}}) == []


def test_unknown_kind_field_and_double_registration_are_one_line_errors():
    with pytest.raises(SaesimError, match=r"^unknown source kind 'gguf'; allowed: toy, modular, smollm2, hf, transformer_lens, saes$"):
        source_kinds.get("gguf")
    with pytest.raises(SaesimError, match=r"^source kinds have no field\(s\) grokking; fields: "):
        source_kinds.kinds(grokking=True)
    with pytest.raises(SaesimError, match="registered twice"):
        source_kinds.register(SOURCE_KINDS["toy"])
    with pytest.raises(SaesimError, match="store_rule must be one of"):
        SourceKind("x", "x", "toy_source", "toys")
    with pytest.raises(SaesimError, match="needs a store rule"):
        SourceKind("x", "x", "saes_source", None)


def _toy_config(kind: str) -> dict:
    from workflow_helpers import SMALL

    cfg = copy.deepcopy(SMALL)
    cfg["experiments"]["toy"]["source"]["kind"] = kind
    return cfg


@pytest.fixture
def toy2(tmp_path):
    """A kind ``toy2`` of the toy family registered (and removed after), and a schema that knows it."""
    source_kinds.register(SourceKind("toy2", "a second synthetic kind", "toy_source", "toy",
                                     ground_truth=True, hooks=("toy",), store_n_rows=True))
    schema = copy.deepcopy(SCHEMA)
    schema["$defs"]["source"]["properties"]["kind"]["enum"].append("toy2")
    schema["$defs"]["source"]["allOf"][0]["if"]["properties"]["kind"] = {"enum": ["toy", "toy2"]}
    schema["$defs"]["toy_source"]["properties"]["kind"] = {"enum": ["toy", "toy2"]}
    path = tmp_path / "schema.yaml"
    path.write_text(yaml.safe_dump(schema))
    yield path
    source_kinds.unregister("toy2")
    assert "toy2" not in SOURCE_KINDS


def test_a_new_kind_of_the_toy_family_is_validated_like_toy(toy2):
    from saesim.workflow.config import expected_l0, validate_config

    assert source_kinds.kinds(store_rule="toy") == ("toy", "toy2")
    ok = validate_config(_toy_config("toy2"), toy2)["experiments"]["toy"]
    assert source_kinds.hooks_of(ok) == ["toy"]  # the kind's own hook, without a hooks key
    assert expected_l0(ok["source"]) == expected_l0({**ok["source"], "kind": "toy"}) == pytest.approx(2.0)
    bad = _toy_config("toy2")
    bad["experiments"]["toy"]["hooks"] = ["blocks.0"]
    with pytest.raises(SaesimError, match=r"hooks: a toy2 experiment has the single hook 'toy'$"):
        validate_config(bad, toy2)
    bad = _toy_config("toy2")
    bad["experiments"]["toy"]["store"]["n_rows"] = 1024  # store.n_rows counts for the toy family
    with pytest.raises(SaesimError, match=r"eval_rows: 1024 held-out rows leave none"):
        validate_config(bad, toy2)
    # the unchanged schema does not know it: the enum and the registry must agree
    with pytest.raises(SaesimError, match=r"'toy2' is not allowed; allowed values: toy, modular, smollm2, hf, transformer_lens, saes"):
        validate_config(_toy_config("toy2"), SCHEMA_PATH)


def test_the_workflow_asks_the_registry_not_the_name(tmp_path):
    """With toy's ground_truth turned off in the registry (and nothing else changed), a toy
    experiment plans no ground-truth jobs or figures; with it on, it does."""
    from workflow_helpers import SMALL, copy_workflow, job_counts

    work = copy_workflow(tmp_path / "wf", json.loads(json.dumps(SMALL)))

    def dry_run():
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=work,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return job_counts(proc.stdout)

    before = dry_run()
    assert before["ground_truth_recovery"] == 2 and before["plot_latent_vs_truth"] == 1 and before["make_toy_store"] == 1
    kinds_py = work / "src/saesim/sources/kinds.py"
    text = kinds_py.read_text()
    assert text.count("ground_truth=True, hooks=(\"toy\",)") == 1
    kinds_py.write_text(text.replace("ground_truth=True, hooks=(\"toy\",)", "ground_truth=False, hooks=(\"toy\",)"))
    after = dry_run()
    for rule in ("ground_truth_recovery", "null_ground_truth_recovery", "plot_latent_vs_truth", "plot_recovery_vs_l0", "plot_pwmcc_vs_gtmcc"):
        assert rule in before and rule not in after, rule
    assert after["make_toy_store"] == 1 and after["stability_table"] == 1
