"""Extraction into stores: stop-early equals full forward; SmolLM2 rows equal a fresh forward pass."""

import numpy as np
import pytest
import torch

from saesim import extraction, fourier
from saesim.activation_store import open_store
from saesim.errors import SaesimError

torch.set_num_threads(1)


def test_hook_layers_and_stop_layer():
    assert extraction.hook_layer("blocks.12.hook_resid_post") == 12
    assert extraction.hook_layer("hook_embed") == -1
    assert extraction.hook_layer("ln_final.hook_normalized") is None
    assert extraction.stop_layer_for(["blocks.1.hook_mlp_out", "blocks.3.hook_resid_post"], 6) == 4
    assert extraction.stop_layer_for(["blocks.5.hook_resid_post"], 6) is None
    assert extraction.stop_layer_for(["blocks.1.hook_resid_post", "ln_final.hook_normalized"], 6) is None


@pytest.fixture(scope="module")
def small_lm():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=4, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, act_fn="gelu",
        normalization_type="LN", seed=0, device="cpu",
    )
    return HookedTransformer(cfg).eval()


def test_stop_early_equals_full_forward(small_lm, tmp_path):
    tokens = np.random.default_rng(0).integers(0, 50, size=(5, 16)).astype(np.int32)
    hooks = ["blocks.0.hook_resid_post", "blocks.2.hook_mlp_out"]
    paths = {h: tmp_path / f"{h}.h5" for h in hooks}
    summary = extraction.extract_to_stores(
        small_lm, tokens, hooks, paths, batch_size=2, model_name="tiny", progress=False
    )
    assert summary["n_rows"] == 80
    with torch.no_grad():
        _, full = small_lm.run_with_cache(torch.as_tensor(tokens, dtype=torch.long), names_filter=hooks)
    for hook in hooks:
        with open_store(paths[hook]) as store:
            np.testing.assert_allclose(store.read_rows(0, 80), full[hook].reshape(80, -1).numpy(), atol=1e-6)
            np.testing.assert_array_equal(store.row_array("token_ids"), tokens.reshape(-1))
            np.testing.assert_array_equal(store.row_array("positions"), np.tile(np.arange(16), 5))
            np.testing.assert_array_equal(store.row_array("context_ids"), np.repeat(np.arange(5), 16))
            assert store.attrs["hook"] == hook and store.attrs["model"] == "tiny"
            assert store.attrs["stop_at_layer"] == 3 and store.attrs["n_ctx"] == 16


def test_float16_store_and_errors(small_lm, tmp_path):
    tokens = np.ones((2, 8), dtype=np.int32)
    path = tmp_path / "a.h5"
    extraction.extract_to_stores(small_lm, tokens, ["blocks.1.hook_resid_post"], {"blocks.1.hook_resid_post": path},
                                 dtype="float16", progress=False)
    with open_store(path) as store:
        assert store.activations.dtype == np.float16 and store.n_rows == 16
    with pytest.raises(SaesimError, match="not found"):
        extraction.extract_to_stores(small_lm, tokens, ["blocks.1.hook_nope"], {"blocks.1.hook_nope": path}, progress=False)
    with pytest.raises(SaesimError, match="no output path"):
        extraction.extract_to_stores(small_lm, tokens, ["blocks.1.hook_resid_post"], {}, progress=False)


def test_modular_stores_keep_ground_truth(tmp_path):
    from saesim.models.modular import ModularConfig, build_model

    model = build_model(ModularConfig(p=23, seed=1)).eval()
    hooks = ["blocks.0.hook_resid_post", "blocks.0.hook_mlp_out"]
    paths = {h: tmp_path / f"{h}.h5" for h in hooks}
    summary = extraction.extract_modular_stores(model, hooks, paths, n_rows=1000, seed=3)
    acts = extraction.modular_activations(model, hooks)
    assert acts[hooks[0]].shape == (529, 128)
    for hook in hooks:
        with open_store(paths[hook]) as store:
            ids = store.row_array("context_ids")
            assert store.n_rows == 1000 and sorted(set(ids)) == list(range(529))
            np.testing.assert_array_equal(store.read_rows(0, 1000), acts[hook][ids])
            a, b = np.divmod(ids, 23)
            np.testing.assert_array_equal(store.row_array("token_ids"), (a + b) % 23)
            assert (store.row_array("positions") == 2).all()
            gt = store.group("ground_truth")
            assert set(gt) == {"frequency_norms", "key_frequencies", "embedding_subspace", "activation_subspace"}
            k = len(gt["key_frequencies"])
            assert gt["embedding_subspace"].shape == (2 * k, 128)
            assert store.file["ground_truth"].attrs["random_baseline_embedding"] == pytest.approx(2 * k / 128)
    assert summary["key_frequencies"] == gt["key_frequencies"].tolist()
    w_e = model.W_E.detach().numpy()[:23]
    np.testing.assert_array_equal(gt["key_frequencies"], fourier.key_frequencies(w_e, 23))


# --------------------------------------------------------------------------- SmolLM2 (offline real model)

SMOL_HOOKS = ["blocks.1.hook_resid_post", "blocks.3.hook_resid_post"]


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf")
    from saesim.models.language import load_language_model

    try:
        return load_language_model({"source": "smollm2", "device": "cpu"})
    except SaesimError as exc:
        pytest.skip(str(exc))


def test_smollm2_store_rows_equal_fresh_forward(smollm2, tmp_path):
    from saesim.corpus import build_corpus

    model, tokenizer = smollm2
    corpus = build_corpus(tokenizer, n_ctx=32, n_tokens=64)
    assert corpus.tokens.shape == (2, 32) and (corpus.tokens[:, 0] == tokenizer.bos_token_id).all()
    paths = {h: tmp_path / f"{h}.h5" for h in SMOL_HOOKS}
    extraction.extract_to_stores(model, corpus.tokens, SMOL_HOOKS, paths, batch_size=1, progress=False,
                                 model_name="smollm2")
    tokens = torch.as_tensor(corpus.tokens, dtype=torch.long)
    with torch.no_grad():
        hidden = model.original_model(tokens, output_hidden_states=True).hidden_states
        _, cache = model.run_with_cache(tokens, names_filter=SMOL_HOOKS)
    for hook in SMOL_HOOKS:
        layer = extraction.hook_layer(hook)
        with open_store(paths[hook]) as store:
            rows = store.read_rows(0, store.n_rows)
            assert rows.shape == (64, 576)
            np.testing.assert_array_equal(store.row_array("token_ids"), corpus.tokens.reshape(-1))
            assert store.attrs["stop_at_layer"] == 4
        # the bridge's full forward, and transformers' own hidden states (after block L is index L + 1)
        np.testing.assert_allclose(rows, cache[hook].reshape(64, 576).numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(rows, hidden[layer + 1].reshape(64, 576).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_smollm2_cached_copy_equals_gguf(smollm2):
    """The cached dequantised copy gives the same logits as reading the GGUF file."""
    from saesim.models.language import load_language_model

    cached, tok = smollm2
    fresh, tok2 = load_language_model({"source": "smollm2", "device": "cpu"}, cache_dir=None)
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    assert ids.tolist() == [tok2("The capital of France is")["input_ids"]]
    with torch.no_grad():
        assert torch.equal(cached(ids), fresh(ids))
