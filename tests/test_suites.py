"""SAE suites: cross-variant cells, feature splitting, signed cosine, ``saesim compare A B C``.

The planted suite is written by the field's own writers (EleutherAI's sparsify
``Sae.save_to_disk`` and sae-lens' ``save_inference_model`` / ``save_model``)
and read back by saesim.saes.loading; its answers are known by construction.
"""

import json

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from saesim.saes.loading import load_sae_weights
from saesim.cli import main
from saesim.errors import SaesimError
from saesim.similarity.suites import (
    CELL_THRESHOLDS,
    compare_pair,
    compare_suite,
    cross_variant_cell,
    expand_sae_specs,
    expected_max_signed_cosine,
    feature_splitting,
    p_best_match_above,
    signed_random_baseline,
)
from saesim.similarity import ComparisonOptions, compare_decoders

torch.set_num_threads(1)

D = 64
N_NARROW, N_WIDE, N_LAYER = 100, 400, 100
# narrow latents 0-39 reappear exactly in the wide SAE, 40-69 split into two wide latents at
# cos 0.85, 70-89 into three at cos 0.75, 90-99 not at all; the rest of the wide SAE is random
EXACT, SPLIT2, SPLIT3 = range(0, 40), range(40, 70), range(70, 90)
C2, C3 = 0.85, 0.75
# in the different-layer SAE: narrow latents 0-49 at cos 0.95, 50-69 at cos 0.75, the rest random
NEAR, FAR, C_NEAR, C_FAR = range(0, 50), range(50, 70), 0.95, 0.75


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def tilted(u, c, rng):
    """A unit vector at cosine exactly ``c`` to unit ``u``."""
    v = rng.standard_normal(u.shape)
    v = unit(v - (v @ u) * u)
    return c * u + np.sqrt(1 - c * c) * v


def planted_decoders(seed=0):
    """(narrow [100, 64], wide [400, 64], other layer [100, 64]), rows shuffled and rescaled."""
    rng = np.random.default_rng(seed)
    U = unit(rng.standard_normal((N_NARROW, D)))
    wide = [U[i] for i in EXACT]
    wide += [tilted(U[i], C2, rng) for i in SPLIT2 for _ in range(2)]
    wide += [tilted(U[i], C3, rng) for i in SPLIT3 for _ in range(3)]
    wide += list(unit(rng.standard_normal((N_WIDE - len(wide), D))))
    layer = [tilted(U[i], C_NEAR, rng) for i in NEAR] + [tilted(U[i], C_FAR, rng) for i in FAR]
    layer += list(unit(rng.standard_normal((N_LAYER - len(layer), D))))
    W = np.array(wide)[rng.permutation(N_WIDE)] * rng.uniform(0.5, 2.0, (N_WIDE, 1))
    L = np.array(layer)[rng.permutation(N_LAYER)] * rng.uniform(0.5, 2.0, (N_LAYER, 1))
    return U.astype(np.float32), W.astype(np.float32), L.astype(np.float32)


# what the planted suite must give (narrow = A, wide = B)
NW_A_TO_B = {"0.9": 0.40, "0.8": 0.70, "0.7": 0.90}
NW_B_TO_A = {"0.9": 40 / 400, "0.8": 100 / 400, "0.7": 160 / 400}
NW_HIST = {"0.9": [60, 40, 0, 0], "0.8": [30, 40, 30, 0], "0.7": [10, 40, 30, 20]}
NW_WIDE_UNMATCHED = {"0.9": 360 / 400, "0.8": 300 / 400, "0.7": 240 / 400}
NL_BOTH = {"0.9": 0.5, "0.8": 0.5, "0.7": 0.7}


def write_sparsify(folder, W, k=8):
    """A checkpoint written by EleutherAI's sparsify, with decoder (and encoder) rows ``W``."""
    from sparsify import Sae, SaeConfig

    sae = Sae(W.shape[1], SaeConfig(num_latents=W.shape[0], k=k))
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(W))
        sae.encoder.weight.copy_(torch.from_numpy(W))
    sae.save_to_disk(str(folder))
    return folder


def training_sae(W, k=8):
    import sae_lens

    sae = sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(d_in=W.shape[1], d_sae=W.shape[0], k=k))
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(W))
        sae.W_enc.copy_(torch.from_numpy(W.T.copy()))
    return sae


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """run/layers.6 (narrow) and run/layers.8 (other layer) by sparsify; the wide SAE by sae-lens."""
    root = tmp_path_factory.mktemp("suite")
    U, W, L = planted_decoders()
    write_sparsify(root / "run" / "layers.6", U)
    write_sparsify(root / "run" / "layers.8", L)
    sae = training_sae(W)
    sae.save_inference_model(str(root / "wide"))
    sae.save_model(str(root / "wide_training"))
    return {"root": root, "U": U, "W": W, "L": L}


def run(capsys, *argv):
    code = main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def close(got: dict, want: dict, tol=0.02):
    assert set(want) <= set(got), (got, want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=tol), (k, got[k], v)


# --------------------------------------------------------------------------
# The field's writers, read by saesim.saes.loading
# --------------------------------------------------------------------------


def test_writers_round_trip_through_saesim_checkpoints(suite):
    root = suite["root"]
    for folder, planted, fmt in [(root / "run" / "layers.6", suite["U"], "sparsify"),
                                 (root / "run" / "layers.8", suite["L"], "sparsify"),
                                 (root / "wide", suite["W"], "sae_lens"),
                                 (root / "wide_training", suite["W"], "sae_lens")]:
        w = load_sae_weights(folder)
        assert w.format == fmt and w.W_dec.shape == planted.shape and w.W_enc.shape == planted.T.shape
        # save_inference_model may fold decoder norms into the encoder: directions are what must survive
        np.testing.assert_allclose(np.sum(unit(w.W_dec) * unit(planted), axis=1), 1.0, atol=1e-5)
    cfg = json.loads((root / "run" / "layers.6" / "cfg.json").read_text())
    assert cfg["num_latents"] == N_NARROW and cfg["d_in"] == D and cfg["k"] == 8  # really sparsify's layout


def test_run_folder_expands_to_hookpoints_in_natural_order(tmp_path, suite):
    run_dir = tmp_path / "run"
    for name in ("layers.10", "layers.2", "notes"):
        (run_dir / name).mkdir(parents=True)
    for name in ("layers.10", "layers.2"):
        for f in ("cfg.json", "sae.safetensors"):
            (run_dir / name / f).write_bytes((suite["root"] / "run" / "layers.6" / f).read_bytes())
    got = expand_sae_specs([run_dir, suite["root"] / "wide", "gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical"])
    assert got == [str(run_dir / "layers.2"), str(run_dir / "layers.10"), str(suite["root"] / "wide"),
                   "gemma-scope-2b-pt-res-canonical:layer_12/width_16k/canonical"]
    assert expand_sae_specs([tmp_path / "missing"]) == [str(tmp_path / "missing")]


# --------------------------------------------------------------------------
# The planted suite: known fractions
# --------------------------------------------------------------------------


def test_planted_width_cell_both_directions(suite):
    U = load_sae_weights(suite["root"] / "run" / "layers.6")
    W = load_sae_weights(suite["root"] / "wide")
    cell = cross_variant_cell(U.W_dec, W.W_dec, U.W_enc, W.W_enc,
                              options=ComparisonOptions(thresholds=CELL_THRESHOLDS, baseline_draws=1))
    close(cell["frac_best_match_above_a_to_b"], NW_A_TO_B)
    close(cell["frac_best_match_above_b_to_a"], NW_B_TO_A)
    # one-to-one: 40 at 1.0, 30 at 0.85, 20 at 0.75, 10 unmatched (random partners, far below 0.7)
    close(cell["frac_matched_above"], {"0.9": 0.4, "0.8": 0.7, "0.7": 0.9})
    assert cell["mmcs_a_to_b"] > cell["mmcs_b_to_a"]  # most wide latents have no narrow partner
    base = cell["baseline"]
    for direction in ("a_to_b", "b_to_a"):
        for t in ("0.7", "0.8", "0.9"):
            assert base[f"frac_best_match_above_{direction}"][t] < 1e-4
    assert base["mmcs_a_to_b"] == pytest.approx(p_mean_max(N_WIDE), abs=1e-9)
    assert base["mmcs_b_to_a"] == pytest.approx(p_mean_max(N_NARROW), abs=1e-9)


def p_mean_max(n):
    from saesim.similarity import expected_max_abs_cosine

    return expected_max_abs_cosine(n, D)


def test_planted_feature_splitting(suite):
    U = load_sae_weights(suite["root"] / "run" / "layers.6", with_encoder=False).W_dec
    W = load_sae_weights(suite["root"] / "wide", with_encoder=False).W_dec
    res, arrays = feature_splitting(U, W, top_m=4, return_counts=True)
    assert res["top_m"] == 4 and (res["n_narrow"], res["n_wide"]) == (N_NARROW, N_WIDE)
    for t, hist in NW_HIST.items():
        r = res["by_threshold"][t]
        assert r["hist"][:4] == hist and sum(r["hist"]) == N_NARROW
        assert r["mean_partners"] == pytest.approx(np.dot(hist, range(4)) / N_NARROW, abs=0.02)
        assert r["frac_narrow_split"] == pytest.approx(sum(hist[2:]) / N_NARROW, abs=0.02)
        assert r["frac_wide_unmatched"] == pytest.approx(NW_WIDE_UNMATCHED[t], abs=0.02)
        assert r["frac_capped"] == 0.0
        assert r["baseline"]["mean_partners"] < 1e-3 and r["baseline"]["frac_wide_unmatched"] > 0.99
    counts = arrays["partners_0.7"]
    assert counts[list(EXACT)].tolist() == [1] * 40 and counts[list(SPLIT3)].tolist() == [3] * 20
    # the cap: with m = 2, three-way splits count 2 and are flagged
    capped = feature_splitting(U, W, top_m=2)["by_threshold"]["0.7"]
    assert capped["hist"] == [10, 40, 50] and capped["frac_capped"] == pytest.approx(0.5)


def test_planted_other_layer_only_partly(suite):
    U = load_sae_weights(suite["root"] / "run" / "layers.6").W_dec
    L = load_sae_weights(suite["root"] / "run" / "layers.8").W_dec
    cell = cross_variant_cell(U, L, with_baseline=False)
    close(cell["frac_best_match_above_a_to_b"], NL_BOTH)
    close(cell["frac_best_match_above_b_to_a"], NL_BOTH)
    close(cell["frac_matched_above"], NL_BOTH)


# --------------------------------------------------------------------------
# Signed cosine
# --------------------------------------------------------------------------


def test_signed_vs_abs_on_a_sign_flipped_copy():
    x = np.ones((1, 8), np.float32)
    assert compare_pair(x, -2 * x, with_baseline=False)["mmcs"] == pytest.approx(1.0, abs=1e-6)
    s = compare_pair(x, -2 * x, options=ComparisonOptions(cosine="signed"), with_baseline=False)
    assert s["mmcs"] == pytest.approx(-1.0, abs=1e-6) and s["hungarian_mean_cos"] == pytest.approx(-1.0, abs=1e-6)

    rng = np.random.default_rng(3)
    A = rng.standard_normal((48, 32)).astype(np.float32)
    flipped = np.arange(12)
    B = A.copy()
    B[flipped] *= -2.0
    a, arr_a = compare_pair(A, B, with_baseline=False, return_arrays=True)
    s, arr_s = compare_pair(A, B, options=ComparisonOptions(cosine="signed"), with_baseline=False, return_arrays=True)
    assert a["mmcs"] == pytest.approx(1.0, abs=1e-6) and a["hungarian_mean_cos"] == pytest.approx(1.0, abs=1e-6)
    assert "cosine" not in a and s["cosine"] == "signed"
    # the known answer by brute force: signed cosines, max per row, and Song et al.'s MCC (Hungarian on 1 - cos)
    C = unit(A.astype(np.float64)) @ unit(B.astype(np.float64)).T
    assert np.diag(C)[flipped] == pytest.approx(-1.0) and np.delete(np.diag(C), flipped) == pytest.approx(1.0)
    np.testing.assert_allclose(arr_s["best_cos_a"], C.max(axis=1), atol=1e-6)
    np.testing.assert_allclose(arr_s["best_cos_b"], C.max(axis=0), atol=1e-6)
    assert arr_s["best_cos_a"][flipped].max() < 0.9 and arr_s["best_cos_a"][12:].min() > 0.999
    r, c = linear_sum_assignment(1 - C)
    assert s["hungarian_mean_cos"] == pytest.approx(C[r, c].mean(), abs=1e-6)
    assert s["mmcs"] == pytest.approx(0.5 * (C.max(1).mean() + C.max(0).mean()), abs=1e-6)
    assert s["frac_best_match_above"]["0.9"] == pytest.approx(36 / 48)
    # the sparse (over-budget) path ranks by signed cosine too
    sp = compare_pair(A, B, options=ComparisonOptions(cosine="signed", memory_budget_mb=0.01), with_baseline=False)
    assert sp["matching_exact"] is False and sp["mmcs"] == pytest.approx(s["mmcs"], abs=1e-6)


def test_signed_baseline_closed_form_and_keys():
    rng = np.random.default_rng(0)
    a = unit(rng.standard_normal((20000, 16)))
    b = unit(rng.standard_normal((20000, 5, 16)))
    best = np.einsum("id,ind->in", a, b).max(axis=1)
    assert expected_max_signed_cosine(5, 16) == pytest.approx(best.mean(), abs=0.005)
    assert p_best_match_above(0.3, 5, 16, "signed") == pytest.approx((best >= 0.3).mean(), abs=0.01)
    assert expected_max_signed_cosine(1, 16) == pytest.approx(0.0, abs=1e-6)
    base = signed_random_baseline(40, 60, 16, baseline_draws=2)
    from saesim.similarity import random_decoder_baseline

    abs_base = random_decoder_baseline(40, 60, 16, baseline_draws=2)
    assert set(base) == set(abs_base) | {"cosine"}
    assert base["mmcs"] < abs_base["mmcs"]  # max cos <= max |cos|
    assert base["empirical"]["mmcs"] == pytest.approx(base["mmcs"], abs=0.03)


def test_bad_cosine_is_one_line_error():
    with pytest.raises(SaesimError, match="cosine: must be one of abs, signed, got 'sign'"):
        compare_pair(np.eye(3), np.eye(3), options=ComparisonOptions(cosine="sign"))


# --------------------------------------------------------------------------
# Library consistency: a suite's pairs are the two-SAE comparisons
# --------------------------------------------------------------------------


def test_compare_pair_abs_is_compare_decoders():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((30, 8)), rng.standard_normal((50, 8))
    EA, EB = rng.standard_normal((8, 30)), rng.standard_normal((8, 50))
    ref = compare_decoders(A, B, EA, EB, baseline_draws=2)
    assert compare_pair(A, B, EA, EB, options=ComparisonOptions(baseline_draws=2)) == ref
    # with a baseline handed in (what a suite does once per shape) the result is the same
    base = compare_pair(A, B, EA, EB, options=ComparisonOptions(baseline_draws=2))["baseline"]
    assert compare_pair(A, B, EA, EB, options=ComparisonOptions(baseline_draws=2), baseline=base) == ref


def test_compare_suite_pairs(suite):
    root = suite["root"]
    specs = expand_sae_specs([root / "run", root / "wide"])
    saes = [load_sae_weights(s) for s in specs]
    res = compare_suite(saes, paths=specs, options=ComparisonOptions(thresholds=(0.7, 0.8, 0.9), baseline_draws=1))
    assert [s["path"] for s in res["saes"]] == specs
    assert [(s["n"], s["d"], s["format"]) for s in res["saes"]] == [
        (N_NARROW, D, "sparsify"), (N_LAYER, D, "sparsify"), (N_WIDE, D, "sae_lens")]
    assert res["saes"][0]["hookpoint"] == "layers.6" and res["saes"][0]["k"] == 8
    assert [(p["a"], p["b"]) for p in res["pairs"]] == [(0, 1), (0, 2), (1, 2)]
    nw = res["pairs"][1]
    close(nw["frac_best_match_above_a_to_b"], NW_A_TO_B)
    close(nw["frac_best_match_above_b_to_a"], NW_B_TO_A)
    assert nw["splitting"]["narrow"] == 0
    assert nw["splitting"]["by_threshold"]["0.7"]["hist"][:4] == NW_HIST["0.7"]
    assert "splitting" not in res["pairs"][0]  # same widths
    assert "seconds" not in nw  # deterministic: the same call gives the same dict
    assert compare_suite(saes[:2], paths=specs[:2], options=ComparisonOptions(thresholds=(0.7, 0.8, 0.9), baseline_draws=1))["pairs"][0] \
        == res["pairs"][0]
    close(res["pairs"][0]["frac_best_match_above_a_to_b"], NL_BOTH)


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


def test_cli_three_saes_json_shape_and_pairs_equal_two_sae_output(capsys, suite):
    root = suite["root"]
    code, out, err = run(capsys, "compare", root / "run", root / "wide", "--json", "--baseline-draws", "1")
    assert code == 0, err
    res = json.loads(out)
    assert set(res) >= {"saes", "pairs"}
    assert [s["path"] for s in res["saes"]] == [str(root / "run" / "layers.6"), str(root / "run" / "layers.8"),
                                                str(root / "wide")]
    for s in res["saes"]:
        assert {"path", "n", "d", "format"} <= set(s)
    assert [(p["a"], p["b"]) for p in res["pairs"]] == [(0, 1), (0, 2), (1, 2)]
    code, out, err = run(capsys, "compare", root / "run" / "layers.6", root / "wide", "--json",
                         "--baseline-draws", "1")
    assert code == 0, err
    two = json.loads(out)
    assert two["a"] == {"source": str(root / "run" / "layers.6"), "format": "sparsify"}  # today's output
    pair = res["pairs"][1]
    assert set(two) <= set(pair)
    for k in two:
        if k not in ("a", "b", "seconds", "baseline"):
            assert pair[k] == two[k], k
    # the pair's baseline adds both directions of the best-match fraction to the two-SAE baseline
    for k in two["baseline"]:
        if k != "method":
            assert pair["baseline"][k] == two["baseline"][k], k
    assert two["baseline"]["method"].items() <= pair["baseline"]["method"].items()
    close(pair["frac_best_match_above_a_to_b"], {"0.9": 0.4, "0.8": 0.7, "0.7": 0.9})


def test_cli_table_prints_the_matrix(capsys, suite):
    root = suite["root"]
    code, out, err = run(capsys, "compare", root / "run" / "layers.6", root / "run" / "layers.8", root / "wide",
                         "--baseline-draws", "1", "--thresholds", "0.7", "0.8", "0.9")
    assert code == 0, err
    assert "[0] -> [2] t=0.7: 10 / 40 / 30 / 20 of 100" in out
    lines = out.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("fraction of row's latents") and ">= 0.9" in line)
    row0, row2 = lines[i + 2].split(), lines[i + 4].split()
    # row [0] (narrow): -, 0.500 (random) to layers.8, 0.400 (random) to the wide SAE
    assert row0[0] == "[0]" and row0[1] == "-" and row0[2] == "0.500" and row0[4] == "0.400"
    assert row2[0] == "[2]" and row2[1] == "0.100"  # wide -> narrow


def test_cli_run_folder_alone_compares_every_hookpoint(capsys, suite):
    code, out, err = run(capsys, "compare", suite["root"] / "run", "--json", "--baseline-draws", "0")
    assert code == 0, err
    res = json.loads(out)
    assert len(res["saes"]) == 2 and [(p["a"], p["b"]) for p in res["pairs"]] == [(0, 1)]
    assert "baseline" not in res["pairs"][0]


def test_cli_signed(capsys, suite, tmp_path):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((48, 32)).astype(np.float32)
    B = A.copy()
    B[:12] *= -1
    write_sparsify(tmp_path / "a", A)
    write_sparsify(tmp_path / "b", B)
    code, out, err = run(capsys, "compare", tmp_path / "a", tmp_path / "b", "--json", "--baseline-draws", "1")
    assert code == 0, err
    a = json.loads(out)
    code, out, err = run(capsys, "compare", tmp_path / "a", tmp_path / "b", "--json", "--baseline-draws", "1",
                         "--cosine", "signed")
    assert code == 0, err
    s = json.loads(out)
    assert a["mmcs_a_to_b"] == pytest.approx(1.0, abs=1e-6) and "cosine" not in a
    assert s["cosine"] == "signed" and s["frac_best_match_above"]["0.9"] == pytest.approx(36 / 48)
    assert s["baseline"]["mmcs"] < a["baseline"]["mmcs"]
    code, out, err = run(capsys, "compare", tmp_path / "a", tmp_path / "b", "--baseline-draws", "0",
                         "--cosine", "signed")
    assert code == 0 and "mean max cos (symmetric)" in out and "|cos|" not in out


def test_cli_suite_errors(capsys, suite, tmp_path):
    root = suite["root"]
    code, out, err = run(capsys, "compare", root / "wide")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "at least two SAEs" in err
    code, out, err = run(capsys, "compare", root / "run", root / "wide", "--out", tmp_path / "x.h5")
    assert code == 1 and "--out" in err and "exactly two" in err and len(err.strip().splitlines()) == 1
