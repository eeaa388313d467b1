"""Transfer across models (saesim.similarity.universality.transfer): known answers on a rotated copy of a store."""

import numpy as np
import pytest

from saesim.stores.activation_store import StoreWriter, open_store
from saesim.errors import SaesimError
from saesim.sources.synthetic import write_synthetic_store
from saesim.similarity.universality.transfer import (
    explained_variance,
    fit_affine,
    fit_procrustes,
    paired_correlations,
    split_halves,
    transfer,
    transfer_rows,
)


def test_procrustes_and_affine_recover_planted_maps():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) + 2
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    R, mu_f, mu_t = fit_procrustes(x @ Q + 1.0, x)
    np.testing.assert_allclose(R, Q.T, atol=1e-10)
    A = rng.standard_normal((6, 4))
    W, b = fit_affine(x, x @ A - 3)
    np.testing.assert_allclose(W, A, atol=1e-10)
    np.testing.assert_allclose(b, -3, atol=1e-9)
    assert explained_variance(x, x) == 1.0 and explained_variance(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(0.0)


def test_paired_correlations_copy_is_one_and_independent_near_zero():
    rng = np.random.default_rng(1)
    a = np.maximum(rng.standard_normal((4000, 5)), 0)
    corr = paired_correlations(a, a, [0, 1, 2], [0, 1, 2])
    np.testing.assert_allclose(corr, 1.0)
    b = np.maximum(rng.standard_normal((4000, 5)), 0)
    assert np.abs(paired_correlations(a, b, [0, 1, 2], [0, 1, 2])).max() < 0.06


def test_split_halves_are_disjoint_and_bounded():
    fit, ev = split_halves(101, 30, seed=0)
    assert len(fit) == len(ev) == 30 and not set(fit) & set(ev)
    with pytest.raises(SaesimError, match="at least 4"):
        split_halves(3, 10, 0)


sae_lens = pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def rotated_pair(tmp_path_factory):
    """A toy store, its copy rotated by a random orthogonal Q, and TopK SAEs: two seeds on the
    store, one on the rotated copy."""
    from saesim.saes.training import SAESpec, train_sae
    from saesim.similarity.universality import load_sae

    tmp = tmp_path_factory.mktemp("rot")
    model = {"num_features": 12, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.3, "min_prob": 0.1},
             "bias": False, "seed": 0}
    store = tmp / "x.h5"
    write_synthetic_store(store, model, 20_000, chunk_rows=4096, progress=False)
    Q = np.linalg.qr(np.random.default_rng(5).standard_normal((16, 16)))[0]
    rotated = tmp / "xq.h5"
    with open_store(store) as s:
        x = s.read_rows(0, s.n_rows).astype(np.float64)
    with StoreWriter(rotated, 16, dtype="float32", chunk_rows=4096) as w:
        w.append((x @ Q).astype(np.float32))

    def spec(seed):
        return SAESpec("topk", 16, 3, seed, seed, lr=1e-2, training_samples=40_000, batch_size=256, eval_rows=2048)

    saes = {}
    for name, path, seed in (("a0", store, 0), ("a1", store, 1), ("b", rotated, 1)):
        train_sae(path, spec(seed), tmp / name)
        saes[name] = load_sae(tmp / name)
    saes["dir"] = str(tmp)
    return x, x @ Q, saes


def _dec(sae):
    from saesim.similarity.universality import decoder_of

    return decoder_of(sae)


def test_rotated_store_transfer_low_raw_restored_by_procrustes(rotated_pair):
    x, xq, saes = rotated_pair
    res = transfer(saes["a0"], saes["b"], x, xq, pairs=(np.arange(16), np.arange(16)),
                   dec_a=_dec(saes["a0"]), dec_b=_dec(saes["b"]), max_rows=4000, seed=0)
    m = res["maps"]
    ceiling = m["ceiling"]["explained_variance"]
    assert ceiling > 0.8
    assert m["raw"]["explained_variance"] < ceiling - 0.3  # A's dictionary does not fit the rotated activations
    assert m["procrustes"]["explained_variance"] == pytest.approx(ceiling, abs=0.01)
    assert m["procrustes"]["map_r2"] > 0.999 and m["affine"]["explained_variance"] == pytest.approx(ceiling, abs=0.01)
    # decoders: raw agreement at the random level, near the seed level after the fitted rotation
    from saesim.similarity import mean_max_cosine

    seed_level = mean_max_cosine(_dec(saes["a0"]).astype(np.float32), _dec(saes["a1"]).astype(np.float32))
    assert m["raw"]["decoder_mmcs"] < res["decoder_mmcs_baseline"] + 0.12
    assert m["procrustes"]["decoder_mmcs"] > seed_level - 0.05
    assert seed_level > res["decoder_mmcs_baseline"] + 0.2  # the test can tell the two apart
    assert [r["map"] for r in transfer_rows(res)] == ["ceiling", "raw", "procrustes", "affine"]


def test_sae_and_its_exact_copy_have_paired_correlation_one(rotated_pair):
    """B = A's model on rotated data with A's SAE rotated: through Procrustes every pair (i, i) correlates 1."""
    from saesim.similarity.universality import ArraySAE

    x, xq, saes = rotated_pair
    a = saes["a0"]
    W_enc = np.asarray(a.W_enc, np.float64)
    b_enc = np.asarray(a.b_enc, np.float64)
    W_dec = np.asarray(a.W_dec, np.float64)
    plain = ArraySAE(W_enc, b_enc - 0.5, W_dec)  # ReLU with a bias: sparse
    Q = np.linalg.lstsq(x[:2000], xq[:2000], rcond=None)[0]
    copy = ArraySAE(Q.T @ W_enc, b_enc - 0.5, W_dec @ Q)  # the same SAE in the rotated coordinates
    res = transfer(plain, copy, x, xq, pairs=(np.arange(16), np.arange(16)), max_rows=3000)
    assert res["maps"]["procrustes"]["paired_corr_median"] == pytest.approx(1.0, abs=1e-4)
    assert res["maps"]["ceiling"]["paired_corr_median"] == pytest.approx(1.0, abs=1e-4)
    shuffled = transfer(plain, copy, x, xq, pairs=(np.arange(16), np.roll(np.arange(16), 5)), max_rows=3000)
    assert abs(shuffled["maps"]["procrustes"]["paired_corr_median"]) < 0.3


def test_compare_by_activations_script_writes_transfer_and_the_table(rotated_pair, tmp_path):
    """The rule script measures transfer beside the universality comparison; the table and the
    figure's line read it."""
    import json
    import runpy
    from pathlib import Path
    from types import SimpleNamespace

    from saesim.similarity.universality.transfer import TRANSFER_COLUMNS, transfer_line, transfer_table

    root = Path(__file__).resolve().parents[1]
    x, xq, saes = rotated_pair
    tmp = Path(saes["dir"])

    class Inputs(dict):
        __getattr__ = dict.__getitem__

    smk = SimpleNamespace(
        input=Inputs(store_a=str(tmp / "x.h5"), sae_a=str(tmp / "a0"), store_b=str(tmp / "xq.h5"), sae_b=str(tmp / "b")),
        output=SimpleNamespace(summary=str(tmp_path / "c.json"), arrays=str(tmp_path / "c.npz")),
        params=SimpleNamespace(options={"n_null": 5, "max_rows": 64, "max_tokens": 8000, "transfer_rows": 2000, "seed": 0},
                               exclusions={"a": {}, "b": {}}),
        wildcards=SimpleNamespace(hook_a="x", hook_b="xq"), threads=1, log=[str(tmp_path / "job.log")],
        rule="compare_by_activations", resources={}, scriptdir=str(root / "scripts"),
    )
    runpy.run_path(str(root / "scripts" / "compare_by_activations.py"), init_globals={"snakemake": smk})
    s = json.loads((tmp_path / "c.json").read_text())
    t = s["transfer"]
    assert t["n_eval"] == 2000 and t["n_fit"] == 2000
    assert t["maps"]["procrustes"]["explained_variance"] == pytest.approx(t["maps"]["ceiling"]["explained_variance"], abs=0.01)
    assert t["maps"]["raw"]["explained_variance"] < t["maps"]["ceiling"]["explained_variance"] - 0.3
    table = transfer_table([tmp_path / "c.json"])
    assert list(table.columns) == TRANSFER_COLUMNS and list(table["map"]) == ["ceiling", "raw", "procrustes", "affine"]
    line = transfer_line(table, "x", "xq")
    assert line.startswith("A's SAE on B") and "Procrustes" in line
