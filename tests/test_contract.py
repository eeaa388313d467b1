"""The versioned JSON contract: ``saesim compare --json`` / ``--matching`` validate against the shipped schema."""

import json

import numpy as np
import pytest

from saesim.similarity import contract
from saesim.cli import main
from saesim.errors import SaesimError
from saesim.registry.metrics import DECODER_METRICS

from test_compare_cli import write_sae


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """A; B = A's rows permuted and sign-flipped with 8 of 40 rows replaced by random ones and 4 extra rows."""
    root = tmp_path_factory.mktemp("contract")
    rng = np.random.default_rng(1)
    n, d = 40, 24
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    perm = rng.permutation(n)
    dec_b = -dec[perm]
    fresh = rng.choice(n, 8, replace=False)  # rows of B that are no copy
    dec_b[fresh] = rng.standard_normal((8, d))
    dec_b = np.vstack([dec_b, rng.standard_normal((4, d))])
    enc_b = np.hstack([enc[:, perm], rng.standard_normal((d, 4))])
    a = write_sae(root / "a", dec, enc)
    b = write_sae(root / "b", dec_b, enc_b)
    return a, b, perm, set(fresh.tolist())


def run_json(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_schema_is_package_data_and_valid():
    import jsonschema

    schema = contract.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    # every registered decoder metric is a required field of a pair
    assert set(DECODER_METRICS) <= set(schema["$defs"]["pair"]["required"])


def test_compare_json_validates_with_provenance(capsys, saes):
    a, b, _, _ = saes
    res = run_json(capsys, "compare", a, b, "--json", "--baseline-draws", "1", "--seed", "7")
    contract.validate(res)
    assert res["schema_version"] == contract.SCHEMA_VERSION and res["document"] == "pair"
    prov = res["provenance"]
    assert prov["saesim_version"] == prov["versions"]["saesim"]
    ia, ib = prov["inputs"]["a"], prov["inputs"]["b"]
    assert ia["path"] == str(a) and ia["kind"] == "folder" and ia["format"] == "sae_lens"
    assert (ia["n_latents"], ib["n_latents"], ia["d_in"]) == (40, 44, 24)
    # the content hash is the weights file's sha256 (the same as training's weights_sha256)
    from saesim.hashes import file_sha256

    assert ia["sha256"] == file_sha256(a / "sae_weights.safetensors") != ib["sha256"]
    assert prov["options"]["thresholds"] == [0.5, 0.7, 0.8, 0.9] and prov["options"]["cosine"] == "abs"
    assert prov["options"]["baseline_draws"] == 1 and prov["seeds"] == {"baseline": 7}


def test_schema_rejects_broken_documents(capsys, saes):
    a, b, _, _ = saes
    res = run_json(capsys, "compare", a, b, "--json", "--baseline-draws", "0")
    assert res["provenance"]["seeds"] == {"baseline": None}
    for broken in ({k: v for k, v in res.items() if k != "provenance"},
                   {**res, "schema_version": "2.0"},
                   {**res, "mmcs": "high"},
                   {**res, "provenance": {**res["provenance"], "inputs": {"a": {"path": "x"}}}}):
        with pytest.raises(SaesimError, match="compare schema"):
            contract.validate(broken)


def test_matching_file_round_trips(capsys, saes, tmp_path):
    a, b, perm, fresh = saes
    out = tmp_path / "m.json"
    res = run_json(capsys, "compare", a, b, "--json", "--baseline-draws", "0", "--matching", out, "--with-matching")
    assert res["matching_file"] == str(out)
    m = contract.read_matching(out)  # validates
    assert m["document"] == "matching" and m["provenance"] == res["provenance"]
    assert (m["n_a"], m["n_b"], m["exact"]) == (40, 44, True)
    assert len(m["a"]) == 40 and sorted(m["a"].tolist()) == list(range(40))
    assert m["unmatched_a"] == [] and len(m["unmatched_b"]) == 4
    assert set(m["unmatched_b"]) | set(m["b"].tolist()) == set(range(44))
    # the 32 copied rows are matched to their source with |cos| 1: B row j is -A[perm[j]]
    for i, j, c in zip(m["a"], m["b"], m["cos"]):
        if j < 40 and j not in fresh:
            assert perm[j] == i and c == pytest.approx(1.0, abs=1e-6)
    assert np.mean(m["cos"]) == pytest.approx(res["hungarian_mean_cos"], abs=1e-6)
    # the inline copy is the same matching; writing the read document again gives the same bytes
    assert res["matching"]["pairs"] == json.loads(out.read_text())["pairs"]
    again = tmp_path / "again.json"
    doc = {k: v for k, v in m.items() if k not in ("a", "b", "cos")}
    contract.write_matching(again, doc)
    assert again.read_bytes() == out.read_bytes()


def test_signed_matching_and_bad_file(capsys, saes, tmp_path):
    a, b, _, _ = saes
    out = tmp_path / "s.json"
    run_json(capsys, "compare", a, b, "--json", "--baseline-draws", "0", "--cosine", "signed", "--matching", out)
    m = contract.read_matching(out)
    assert m["cosine"] == "signed"
    assert m["cos"].min() < 0 or m["cos"].mean() < 0.5  # sign-flipped copies are not signed matches
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"document": "matching"}))
    with pytest.raises(SaesimError, match="bad.json"):
        contract.read_matching(bad)


def test_suite_json_validates(capsys, saes, tmp_path):
    a, b, _, _ = saes
    res = run_json(capsys, "compare", a, b, a, "--json", "--baseline-draws", "0")
    contract.validate(res)
    assert res["document"] == "suite" and set(res["provenance"]["inputs"]) == {"0", "1", "2"}
    for pair in res["pairs"]:  # each pair is a pair document of its own
        contract.validate(pair)
        assert pair["provenance"]["inputs"]["b"] == res["provenance"]["inputs"][str(pair["b"])]


def test_workflow_pair_jsons_follow_the_schema(workflow_copy):
    """Every pair JSON the (tiny) workflow writes is a pair document: schema, inputs hashed like training did."""
    from saesim.hashes import file_sha256

    pairs = sorted(workflow_copy.glob("results/**/pairs/**/*.json"))
    assert pairs
    for path in pairs:
        doc = json.loads(path.read_text())
        contract.validate(doc, str(path))
        assert doc["document"] == "pair"
        prov = doc["provenance"]
        assert [prov["seeds"]["sae_a"], prov["seeds"]["sae_b"]] == doc["identity"]["seeds"]
        assert prov["seeds"]["sae_a"] != prov["seeds"]["sae_b"] and prov["options"]["baseline_draws"] == 0
        for side in ("a", "b"):
            rec = prov["inputs"][side]
            assert rec["kind"] == "folder" and rec["path"] == doc[f"sae_{side}"]
            assert rec["sha256"] == file_sha256(workflow_copy / rec["path"] / "sae_weights.safetensors")
            metrics = json.loads((workflow_copy / rec["path"] / "metrics.json").read_text())
            assert metrics["weights_sha256"] == rec["sha256"]


def test_docs_example_validates():
    """The pair example in docs/json-contract.md is a valid document."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "json-contract.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    doc = json.loads(blocks[0])
    contract.validate(doc)
    assert doc["document"] == "pair" and doc["schema_version"] == contract.SCHEMA_VERSION
