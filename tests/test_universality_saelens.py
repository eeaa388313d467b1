"""encode_sparse on a real sae-lens SAE folder (imports sae-lens: ~7 s)."""

import numpy as np
import pytest
import torch

from saesim.stores.activation_store import StoreWriter
from saesim.similarity.universality import compare_by_activations, decoder_of, encode_sparse, load_sae

torch.set_num_threads(1)
sae_lens = pytest.importorskip("sae_lens")


@pytest.fixture(scope="module")
def sae_folder_and_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("saelens")
    torch.manual_seed(0)
    sae = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=8, d_sae=24))
    with torch.no_grad():
        sae.b_enc.fill_(-0.2)
    sae.save_model(str(root / "sae"))
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(300, 8)).astype(np.float32)
    with StoreWriter(root / "acts.h5", 8, with_tokens=True, chunk_rows=64) as w:
        w.append(acts, token_ids=np.arange(300) % 11, positions=np.arange(300) % 30, context_ids=np.arange(300) // 30)
    return root / "sae", root / "acts.h5", acts


def test_encode_sparse_matches_sae_lens_encode(sae_folder_and_store):
    folder, store, acts = sae_folder_and_store
    sae = sae_lens.SAE.load_from_disk(str(folder), device="cpu")  # the reference: sae-lens itself
    with torch.no_grad():
        dense = sae.encode(torch.from_numpy(acts)).numpy()
    # on the CPU, load_sae reads the folder with saesim's numpy encoder (no sae-lens import);
    # it encodes as sae-lens does
    from saesim.saes.encoding import NumpySAE

    loaded = load_sae(folder)
    assert isinstance(loaded, NumpySAE)
    np.testing.assert_allclose(loaded.encode(acts), dense, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(loaded.encode(acts) > 0, dense > 0)
    np.testing.assert_array_equal(decoder_of(loaded), decoder_of(sae))
    assert (dense > 0).mean() > 0.05
    rows = np.array([0, 3, 4, 100, 101, 299])
    for chunk_rows, selected in ((50, None), (2, rows)):
        chunks = list(encode_sparse(folder, store, chunk_rows=chunk_rows, rows=selected))
        got = np.vstack([c.toarray() for c in chunks])
        want = dense if selected is None else dense[selected]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert decoder_of(sae).shape == (24, 8)


def test_compare_by_activations_with_sae_folders(sae_folder_and_store):
    folder, store, _ = sae_folder_and_store
    res = compare_by_activations(store, folder, store, folder, chunk_rows=64, n_null=20, min_freq=0.0, knn_k=3)
    assert res.summary["one_to_one"]["n_paired"] == res.summary["n_latents_a"] - res.summary["filters"]["dead_or_rare"]["removed_a"]
    assert res.summary["one_to_one"]["mean_corr"] == pytest.approx(1.0)
    np.testing.assert_array_equal(res.arrays["one_to_one_a"], res.arrays["one_to_one_b"])
