"""Extraction into stores: stop-early equals full forward; SmolLM2 rows equal a fresh forward pass."""

import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from saesim.sources import extraction
from saesim.analysis import fourier
from saesim.stores.activation_store import open_store
from saesim.errors import SaesimError
from saesim.sources.gaussian_null import write_null_store

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
    from saesim.sources.modular import ModularConfig, build_model

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
    from saesim.sources.language import load_language_model

    try:
        return load_language_model({"source": "smollm2", "device": "cpu"})
    except SaesimError as exc:
        pytest.skip(str(exc))


def test_smollm2_store_rows_equal_fresh_forward(smollm2, tmp_path):
    from saesim.sources.corpus import build_corpus

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
    from saesim.sources.language import load_language_model

    cached, tok = smollm2
    fresh, tok2 = load_language_model({"source": "smollm2", "device": "cpu"}, cache_dir=None)
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    assert ids.tolist() == [tok2("The capital of France is")["input_ids"]]
    with torch.no_grad():
        assert torch.equal(cached(ids), fresh(ids))


# --------------------------------------------------------------------------- the documented store schema

README = Path(__file__).resolve().parents[1] / "docs" / "artifacts.md"  # the documented store format


def documented_store_rows():
    """The docs' store table (docs/artifacts.md) as rows of cells (header first)."""
    text = README.read_text()
    section = text[text.index("## Activation store") :]
    section = section[: section.index("\n## ", 5)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert rows[0].startswith("| dataset / attribute | stores |"), "README store table lost its header"
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[1:]]


def documented_dtypes():
    """{dataset path: the dtypes its README row allows}."""
    return {name.strip("`"): set(re.findall(r"(?:float|int)\d+", shape))
            for name, _, shape, _ in documented_store_rows() if name.startswith("`/")}


#: producers of stores: language models, the modular model, the toy model, the Gaussian null of any of them
STORE_KINDS = ("lm", "modular", "toy", "null")


def documented_store_schema():
    """{kind: (dataset paths, root attrs, /ground_truth attrs)} from the README's store table."""
    schema = {kind: (set(), set(), set()) for kind in STORE_KINDS}
    for name, stores, _shape, meaning in documented_store_rows():
        kinds = STORE_KINDS if stores == "all" else [k.strip() for k in stores.split(",")]
        for kind in kinds:
            datasets, attrs, gt_attrs = schema[kind]
            if name.startswith("`/"):
                datasets.add(name.strip("`"))
            else:
                target = gt_attrs if name == "attrs of `/ground_truth`" else attrs
                assert name in ("attrs", "attrs of `/ground_truth`"), f"README store table: unknown row {name!r}"
                target.update(re.findall(r"(?:^|, )`(\w+)`", meaning))
    return schema


def h5py_schema(path):
    datasets = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: datasets.append("/" + name) if isinstance(obj, h5py.Dataset) else None)
        gt_attrs = set(f["ground_truth"].attrs) if "ground_truth" in f else set()
        return set(datasets), set(f.attrs), gt_attrs


def h5dump_schema(path):
    """The same three sets, from the header that Debian's ``h5dump -H`` prints."""
    out = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True, check=True).stdout
    datasets, attrs, gt_attrs, stack = set(), set(), set(), []
    for line in out.splitlines():
        m = re.match(r'^(\s*)(GROUP|DATASET|ATTRIBUTE) "([^"]+)"', line)
        if m:
            depth = len(m.group(1)) // 3
            del stack[depth:]
            kind, name = m.group(2), m.group(3)
            if kind == "GROUP":
                stack.append("" if name == "/" else name)
            elif kind == "DATASET":
                datasets.add("/".join(stack + [name]) if stack[1:] else "/" + name)
            elif kind == "ATTRIBUTE":
                (gt_attrs if stack[1:] == ["ground_truth"] else attrs).add(name)
    return datasets, attrs, gt_attrs


@pytest.fixture(scope="module")
def one_store_of_each_kind(small_lm, tmp_path_factory):
    from saesim.sources.modular import ModularConfig, build_model
    from saesim.sources.synthetic import write_synthetic_store

    out = tmp_path_factory.mktemp("schema")
    tokens = np.random.default_rng(0).integers(0, 50, size=(2, 16)).astype(np.int32)
    # the attributes that scripts/extract_activations.py and extract_modular_stores.py add
    extraction.extract_to_stores(small_lm, tokens, ["blocks.1.hook_resid_post"], {"blocks.1.hook_resid_post": out / "lm.h5"},
                                 progress=False, attrs={"corpus_sha256": "0" * 64, "corpus_origin": "test"})
    cfg = ModularConfig(p=23, seed=1)
    extraction.extract_modular_stores(build_model(cfg).eval(), ["blocks.0.hook_mlp_out"], {"blocks.0.hook_mlp_out": out / "modular.h5"},
                                      n_rows=600, attrs={"config": cfg.to_dict(), "grok_epoch": -1})
    # hierarchy and correlation on, so every documented toy dataset is written with content
    model = {"num_features": 8, "hidden_dim": 16, "firing_probability": {"generator_name": "linear", "max_prob": 0.4, "min_prob": 0.1},
             "hierarchy": {"total_root_nodes": 1, "branching_factor": 2, "max_depth": 1}, "correlation": {"rank": 2, "correlation_scale": 0.2},
             "seed": 0}
    write_synthetic_store(out / "toy.h5", model, n_rows=2000, progress=False)
    write_null_store(out / "lm.h5", out / "null.h5", exclude_positions=[0], exclude_norm_above=10)
    return {kind: out / f"{kind}.h5" for kind in STORE_KINDS}


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_store_schema_is_the_documented_one(one_store_of_each_kind, kind):
    documented = documented_store_schema()[kind]
    assert h5py_schema(one_store_of_each_kind[kind]) == documented
    with open_store(one_store_of_each_kind[kind]) as store:  # and saesim's own reader accepts it
        assert store.n_rows > 0
    allowed = documented_dtypes()
    with h5py.File(one_store_of_each_kind[kind], "r") as f:
        for name in documented[0]:
            assert f[name].dtype.name in allowed[name], (name, f[name].dtype)


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="h5dump not installed (Debian: apt-get install hdf5-tools)")
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_h5dump_shows_the_documented_schema(one_store_of_each_kind, kind):
    assert h5dump_schema(one_store_of_each_kind[kind]) == documented_store_schema()[kind]
