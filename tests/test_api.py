"""The Python API (saesim.compare, saesim.load_results) and the snippets of docs/python-api.md, executed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import saesim
from saesim.cli import main
from saesim.errors import SaesimError

from test_compare_cli import write_sae

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def doc_blocks():
    """The ```python blocks of docs/python-api.md, in order."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def run_block(code, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_snippet__"})


def test_doc_has_the_two_examples():
    blocks = doc_blocks()
    assert len(blocks) == 2
    assert "saesim.compare(" in blocks[0] and "saesim.load_results(" in blocks[1]


def test_doc_compare_snippet_runs(tmp_path, monkeypatch, capsys):
    run_block(doc_blocks()[0], tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "0.75 of the latents matched at |cos| >= 0.9" in out
    assert (tmp_path / "sae_a" / "sae_weights.safetensors").is_file()


def test_doc_load_results_snippet_runs(workflow_copy, monkeypatch, capsys):
    run_block(doc_blocks()[1], workflow_copy, monkeypatch)
    assert "pair_metrics" in capsys.readouterr().out


@pytest.fixture(scope="module")
def saes(tmp_path_factory):
    """B = A's first 30 rows reversed and negated, then 10 random rows; null pair: independent random SAEs."""
    root = tmp_path_factory.mktemp("api")
    rng = np.random.default_rng(3)
    n, d = 40, 16
    dec, enc = rng.standard_normal((n, d)), rng.standard_normal((d, n))
    dec_b = np.vstack([-dec[:30][::-1], rng.standard_normal((10, d))])
    enc_b = np.hstack([-enc[:, :30][:, ::-1], rng.standard_normal((d, 10))])
    paths = {"a": write_sae(root / "a", dec, enc), "b": write_sae(root / "b", dec_b, enc_b)}
    for k in ("na", "nb"):
        paths[k] = write_sae(root / k, rng.standard_normal((n, d)), rng.standard_normal((d, n)))
    return paths, (dec, enc), (dec_b, enc_b)


def test_api_equals_cli_json(saes, capsys):
    paths, _, _ = saes
    code = main(["compare", str(paths["a"]), str(paths["b"]), "--json", "--baseline-draws", "2", "--seed", "5",
                 "--null-a", str(paths["na"]), "--null-b", str(paths["nb"])])
    cli = json.loads(capsys.readouterr().out)
    assert code == 0
    api = saesim.compare(paths["a"], paths["b"], baseline_draws=2, seed=5, null=(paths["na"], paths["nb"])).to_dict()
    for doc in (cli, api):
        doc.pop("seconds", None)
    assert api == cli
    assert api["mmcs_excess"] is not None and api["provenance"]["inputs"]["null_a"]["path"] == str(paths["na"])


def test_arrays_and_objects_give_the_folder_numbers(saes):
    import torch

    paths, (dec, enc), (dec_b, enc_b) = saes
    by_path = saesim.compare(paths["a"], paths["b"], baseline_draws=0)
    by_arrays = saesim.compare((dec, enc), (torch.tensor(dec_b), torch.tensor(enc_b)), baseline_draws=0,
                               null=(paths["na"], paths["nb"]))
    for m in ("mmcs", "hungarian_mean_cos", "shared_latents_frac"):
        assert getattr(by_arrays, m) == pytest.approx(getattr(by_path, m), abs=1e-6)
    assert by_path.frac_matched_above["0.9"] == pytest.approx(0.75)
    prov = by_arrays.provenance["inputs"]
    assert prov["a"]["kind"] == "object" and prov["a"]["path"] is None and prov["null_b"]["kind"] == "folder"
    from saesim.similarity.contract import array_sha256, validate

    assert prov["a"]["sha256"] == array_sha256(dec)
    validate(by_arrays.to_dict(with_matching=True))
    # bare decoders: no encoders, so no shared latents
    assert saesim.compare(dec, dec_b, baseline_draws=0).shared_latents_frac is None


def test_per_latent_known_answer(saes):
    paths, _, _ = saes
    df = saesim.compare(paths["a"], paths["b"], baseline_draws=0).per_latent()
    a = df[df.side == "a"].set_index("latent")
    b = df[df.side == "b"].set_index("latent")
    assert len(a) == 40 and len(b) == 40
    # A's latent i < 30 is B's latent 29 - i (negated): best and one-to-one partner, |cos| 1
    assert (a.loc[:29, "best_partner"].to_numpy() == np.arange(29, -1, -1)).all()
    assert (a.loc[:29, "matched_partner"].to_numpy() == np.arange(29, -1, -1)).all()
    assert np.allclose(a.loc[:29, "best_cos"], 1.0, atol=1e-6) and np.allclose(a.loc[:29, "matched_cos"], 1.0, atol=1e-6)
    assert a.loc[30:, "best_cos"].max() < 0.99
    assert bool(a.loc[:29, "shared"].all()) and not bool(a.loc[30:, "shared"].any())
    assert set(df.columns) >= {"side", "latent", "best_partner", "best_cos", "matched_partner", "matched_cos"}


def test_unequal_widths_leave_latents_unmatched(saes):
    paths, (dec, _), _ = saes
    c = saesim.compare(dec, dec[:25], baseline_draws=0)
    df = c.per_latent()
    a = df[df.side == "a"].set_index("latent")
    assert a["matched_partner"].isna().sum() == 15 and a.loc[:24, "matched_partner"].tolist() == list(range(25))
    m = c.matching()
    assert len(m) == 25 and (m.a == m.b).all()


def test_bad_inputs_are_one_clear_error(saes):
    paths, (dec, _), _ = saes
    with pytest.raises(SaesimError, match="2-D"):
        saesim.compare(dec[0], dec)
    with pytest.raises(SaesimError, match="d_in"):
        saesim.compare(dec, dec[:, :8])
    with pytest.raises(SaesimError, match="top-m"):
        saesim.compare(dec, dec, top_m=0)
    with pytest.raises(SaesimError, match="cosine"):
        saesim.compare(dec, dec, cosine="euclid")
    with pytest.raises(SaesimError, match="no such file"):
        saesim.compare(paths["a"], paths["b"], null=(paths["na"], paths["a"].parent / "missing"))
    with pytest.raises(SaesimError, match="no such results folder"):
        saesim.load_results(paths["a"].parent / "nothing")
    with pytest.raises(AttributeError, match="no 'nonsense'"):
        saesim.compare(dec, dec, baseline_draws=0).nonsense
