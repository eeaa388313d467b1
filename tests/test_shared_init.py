"""The shared-initialisation detector: index-aligned mean cos against its permutation null."""

import json

import numpy as np
import pytest

from saesim.similarity.shared_init import DEFAULT_Z_THRESHOLD, shared_init_test, shared_init_warning


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_planted_shared_start_is_flagged_and_independent_or_permuted_ones_are_not(rng):
    A = rng.standard_normal((512, 64)).astype(np.float32)
    drifted = A + 1.5 * rng.standard_normal(A.shape).astype(np.float32)  # cos to the start about 0.55
    res = shared_init_test(A, drifted)
    assert res["shared_init"] and res["z"] > 20 and res["p_value"] == pytest.approx(1 / 201)
    assert res["aligned_mean_cos"] == pytest.approx(np.mean(np.sum(unit(A) * unit(drifted), 1)), abs=1e-6)
    assert "same initialisation" in shared_init_warning(res, "a", "b")
    # the same rows in another order: index alignment carries nothing, not flagged
    perm = shared_init_test(A, drifted[rng.permutation(512)])
    assert not perm["shared_init"] and abs(perm["z"]) < DEFAULT_Z_THRESHOLD
    assert shared_init_warning(perm) is None
    # independent draws, 30 pairs: z is standard normal, never near the threshold
    zs = [shared_init_test(rng.standard_normal((512, 64)), rng.standard_normal((512, 64)), seed=s)["z"] for s in range(30)]
    assert max(zs) < DEFAULT_Z_THRESHOLD and abs(np.mean(zs)) < 0.8 and 0.5 < np.std(zs) < 1.6


def test_null_mean_is_exact_with_a_shared_offset(rng):
    # every row shares a direction: the permuted mean cos is far above 0, and only the
    # index-aligned excess over it counts
    offset = 3 * rng.standard_normal(32)
    A = rng.standard_normal((400, 32)) + offset
    B = rng.standard_normal((400, 32)) + offset
    res = shared_init_test(A, B, n_perm=400)
    assert res["null_mean"] > 0.5 and not res["shared_init"]
    brute = np.mean([np.mean(np.sum(unit(A) * unit(B)[p], 1)) for p in (rng.permutation(400) for _ in range(2000))])
    assert res["null_mean"] == pytest.approx(brute, abs=3 * res["null_std"] / np.sqrt(2000) + 1e-9)


def test_different_shapes_are_not_flagged(rng):
    res = shared_init_test(rng.standard_normal((10, 8)), rng.standard_normal((12, 8)))
    assert res["shared_init"] is False and "differ" in res["reason"]


pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    from saesim.sources.synthetic import write_synthetic_store

    out = []
    for seed in (0, 1):  # two different data sets of the same dimension
        path = tmp_path_factory.mktemp("store") / f"toy{seed}.h5"
        model = {"num_features": 24, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.3, "min_prob": 0.1},
                 "std_firing_magnitudes": 0.15, "bias": False, "seed": seed}
        write_synthetic_store(path, model, 8000, chunk_rows=2048, progress=False)
        out.append(path)
    return out


def test_saes_from_the_same_torch_seed_on_different_data_are_flagged(two_stores, tmp_path, capsys):
    """sae-lens SAEs built after the same torch seed and trained briefly on different data are
    flagged by `saesim compare`; independently initialised ones on the same data are not."""
    from saesim.cli import main
    from saesim.saes.training import SAESpec, train_sae

    def spec(init_seed, data_seed):
        return SAESpec("topk", 64, 4, init_seed, data_seed, lr=1e-3, training_samples=4096, batch_size=256, eval_rows=1000)

    train_sae(two_stores[0], spec(7, 1), tmp_path / "shared_a")
    train_sae(two_stores[1], spec(7, 2), tmp_path / "shared_b")
    train_sae(two_stores[0], spec(8, 1), tmp_path / "indep_b")
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "shared_a"), str(tmp_path / "shared_b"), "--json", "--baseline-draws", "0"]) == 0
    out = capsys.readouterr()
    res = json.loads(out.out)["shared_init"]
    assert res["shared_init"] and res["z"] > DEFAULT_Z_THRESHOLD
    warnings = [line for line in out.err.splitlines() if "same initialisation" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING:")
    assert main(["compare", str(tmp_path / "shared_a"), str(tmp_path / "indep_b"), "--json", "--baseline-draws", "0"]) == 0
    out = capsys.readouterr()
    res = json.loads(out.out)["shared_init"]
    assert not res["shared_init"] and abs(res["z"]) < DEFAULT_Z_THRESHOLD and "same initialisation" not in out.err
    # a suite of three: only the shared pair is flagged
    assert main(["compare", str(tmp_path / "shared_a"), str(tmp_path / "shared_b"), str(tmp_path / "indep_b"), "--json", "--baseline-draws", "0"]) == 0
    out = capsys.readouterr()
    flags = {(p["a"], p["b"]): p["shared_init"]["shared_init"] for p in json.loads(out.out)["pairs"]}
    assert flags == {(0, 1): True, (0, 2): False, (1, 2): False}
    assert sum("same initialisation" in line for line in out.err.splitlines()) == 1
