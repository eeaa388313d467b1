"""Downstream loss started at the hook (saesim.analysis.downstream.StartAtHook): the zero and SAE runs
reuse the clean run up to the hook and give the full-forward numbers, for a TransformerBridge (a tiny
random Llama, SmolLM2's family) and for HookedTransformers (standard, rotary and shortformer
positions); a hook it cannot start at, or a model whose tail does not reproduce the clean logits,
runs full forwards."""

import numpy as np
import pytest
import torch

from saesim.analysis.downstream import StartAtHook, downstream_losses
from saesim.sources.extraction import forward_hooks

TOL = 1e-5  # float32 rounding of CE / KL in nats; seen: identical (0.0) on this CPU


def _perturbed(model, scale):
    """Weights far from their init, so every block changes the logits visibly."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


@pytest.fixture(scope="module")
def bridge(tmp_path_factory):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformer_lens.model_bridge import TransformerBridge

    vocab = {f"t{i}": i for i in range(96)}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="t0")),
                                  bos_token="t1", eos_token="t2", pad_token="t2", unk_token="t0")
    folder = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(folder)  # the bridge wants a tokenizer that knows where it came from
    cfg = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2)
    torch.manual_seed(0)
    hf = _perturbed(LlamaForCausalLM(cfg), 0.5)
    model = TransformerBridge.boot_transformers("tiny-llama", hf_model=hf, tokenizer=AutoTokenizer.from_pretrained(folder),
                                                device="cpu", dtype=torch.float32)
    model.eval()
    return model


def _hooked(pos):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=50, n_ctx=16, act_fn="gelu",
                                  positional_embedding_type=pos, normalization_type="RMS" if pos == "rotary" else "LN",
                                  seed=0)
    return _perturbed(HookedTransformer(cfg), 0.05)


def _counting(model, monkeypatch):
    calls = []
    original = model.run_with_hooks

    def counted(*args, **kwargs):
        calls.append(kwargs.get("fwd_hooks"))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "run_with_hooks", counted)
    return calls


def _compare(model, saes, tokens, monkeypatch, *, batch_size, keep=None, max_norm=None):
    kw = dict(keep=keep, max_norm=max_norm, batch_size=batch_size)
    calls = _counting(model, monkeypatch)
    fast = downstream_losses(model, tokens, saes, **kw)
    n_fast = len(calls)
    full = downstream_losses(model, tokens, saes, start_at_hook=False, **kw)
    n_full = len(calls) - n_fast
    worst = 0.0
    for name in saes:
        for field in ("ce_clean", "ce_sae", "ce_zero", "kl_div"):
            a, b = getattr(fast[name], field), getattr(full[name], field)
            assert a == pytest.approx(b, abs=TOL), (name, field, a, b)
            worst = max(worst, abs(a - b))
        assert fast[name].n_predictions == full[name].n_predictions
    return fast, full, n_fast, n_full, worst


def test_bridge_start_at_hook_equals_full_forward(bridge, monkeypatch):
    tokens = np.random.default_rng(0).integers(0, 96, (5, 12))
    keep = np.ones(tokens.shape, bool)
    keep[:, 0] = False
    keep[1, 3:6] = False
    saes = {
        "half0": ("blocks.0.hook_out", lambda x: 0.5 * x),
        "neg1": ("blocks.1.hook_resid_post", lambda x: -x),  # an alias of blocks.1.hook_out
        "zero1in": ("blocks.1.hook_in", lambda x: 0 * x),  # the input of block 1 (= blocks.0.hook_out)
        "zero1out": ("blocks.1.hook_out", lambda x: 0 * x),
        "last": ("blocks.2.hook_out", lambda x: x.flip(-1)),  # only ln_final and unembed follow
        "mlp": ("blocks.1.hook_mlp_out", lambda x: 2 * x),  # inside a block: full forward
    }
    hooks = {h for h, _ in saes.values()}
    norms = forward_hooks(bridge, torch.as_tensor(tokens), ["blocks.0.hook_out"])["blocks.0.hook_out"].norm(dim=-1)
    max_norm = {"blocks.0.hook_out": float(norms.median())}  # a cut that splices some rows and not others
    fast, full, n_fast, n_full, worst = _compare(bridge, saes, tokens, monkeypatch, batch_size=2,
                                                 keep={h: keep for h in hooks}, max_norm=max_norm)
    n_batches = 3
    assert n_full == n_batches * (1 + len(hooks) + len(saes))
    assert n_fast == n_batches * (1 + 2)  # the clean run, and the zero and SAE runs at hook_mlp_out
    assert worst <= TOL
    # the splices matter, far beyond the tolerance: a different splice, or the same one a block later
    assert abs(fast["half0"].ce_sae - fast["half0"].ce_clean) > 100 * TOL
    assert abs(fast["zero1in"].ce_sae - fast["zero1out"].ce_sae) > 100 * TOL
    assert abs(fast["last"].kl_div) > 100 * TOL
    other = downstream_losses(bridge, tokens, {"half0": ("blocks.0.hook_out", lambda x: 0.6 * x)},
                              keep={"blocks.0.hook_out": keep}, max_norm=max_norm, batch_size=2)["half0"]
    assert abs(other.ce_sae - full["half0"].ce_sae) > 100 * TOL
    # max_norm is applied to the clean activation the tail starts from: a cut at 0 splices nothing
    none = downstream_losses(bridge, tokens, {"z": ("blocks.0.hook_out", torch.zeros_like)}, max_norm={"blocks.0.hook_out": 0.0})
    assert none["z"].ce_sae == pytest.approx(none["z"].ce_clean, abs=TOL)


def test_bridge_tail_that_misses_the_clean_logits_falls_back_to_full_forward(bridge, monkeypatch):
    tokens = np.random.default_rng(1).integers(0, 96, (3, 8))
    saes = {"a": ("blocks.0.hook_out", lambda x: 0.5 * x), "b": ("blocks.2.hook_out", lambda x: -x)}
    reference = downstream_losses(bridge, tokens, saes, start_at_hook=False)
    good = StartAtHook.logits_from
    monkeypatch.setattr(StartAtHook, "logits_from", lambda self, layer, resid: good(self, layer, resid) + 0.01)
    calls = _counting(bridge, monkeypatch)
    with pytest.warns(UserWarning, match="does not reproduce"):
        res = downstream_losses(bridge, tokens, saes, batch_size=2)
    assert len(calls) == 2 * (1 + 2 + 2)  # every run a full forward
    for name in saes:
        assert res[name].ce_sae == pytest.approx(reference[name].ce_sae, abs=TOL)
        assert res[name].kl_div == pytest.approx(reference[name].kl_div, abs=TOL)


@pytest.mark.parametrize("pos", ["standard", "rotary", "shortformer"])
def test_hooked_transformer_start_at_hook_equals_full_forward(pos, monkeypatch):
    model = _hooked(pos)
    tokens = np.random.default_rng(2).integers(0, 50, (4, 10))
    keep = np.ones(tokens.shape, bool)
    keep[:, :2] = False
    saes = {
        "half0": ("blocks.0.hook_resid_post", lambda x: 0.5 * x),
        "neg1pre": ("blocks.1.hook_resid_pre", lambda x: -x),
        "last": ("blocks.1.hook_resid_post", lambda x: x.flip(-1)),
        "mlp": ("blocks.0.hook_mlp_out", lambda x: 0 * x),  # inside a block: full forward
    }
    hooks = {h for h, _ in saes.values()}
    fast, full, n_fast, n_full, worst = _compare(model, saes, tokens, monkeypatch, batch_size=3, keep={h: keep for h in hooks})
    assert n_full == 2 * (1 + len(hooks) + len(saes))
    assert n_fast == 2 * (1 + 2)
    assert worst <= TOL
    assert abs(fast["half0"].ce_sae - fast["neg1pre"].ce_sae) > 100 * TOL
    assert abs(fast["last"].kl_div) > 100 * TOL
    assert StartAtHook(model).start("blocks.0.hook_resid_post") == StartAtHook(model).start("blocks.1.hook_resid_pre") == 1


@pytest.mark.parametrize("hook", ["blocks.1.hook_out", "blocks.0.hook_in"])
def test_causal_runner_from_the_hook_equals_full_forward(bridge, monkeypatch, hook):
    """saesim.analysis.causal.LanguageModelRunner runs every ablation of a batch from the hook:
    the per-latent effects equal those of full forward passes, with one full run per batch."""
    from saesim.analysis.causal import LanguageModelRunner, ablation_effects

    rng = np.random.default_rng(0)
    tokens = rng.integers(3, 96, size=(5, 12))
    keep = np.ones(tokens.shape, dtype=bool)
    keep[:, 0] = False
    enc = torch.as_tensor(rng.standard_normal((32, 8)), dtype=torch.float32)
    dec = torch.as_tensor(rng.standard_normal((8, 32)) * 0.3, dtype=torch.float32)

    def encode(x):
        return torch.relu(x @ enc)

    def decode(z):
        return z @ dec

    with torch.no_grad():  # splice only rows up to the median norm, as rows above the cut were not trained on
        _, cache = bridge.run_with_cache(torch.as_tensor(tokens), names_filter=[hook])
    max_norm = float(cache[hook].norm(dim=-1).median())
    effects = {}
    for start in (True, False):
        calls = _counting(bridge, monkeypatch)
        run = LanguageModelRunner(bridge, hook, tokens, keep, max_norm=max_norm, batch_contexts=2, start_at_hook=start)
        effects[start] = ablation_effects(run, encode, decode, [0, 3, 5])
        monkeypatch.undo()
        n_runs = len(calls)
        if start:
            assert n_runs == len(run.batches)  # one clean run per batch, every ablation from the hook
        else:
            assert n_runs > 3 * len(run.batches)
    assert np.abs(effects[False]["kl"]).max() > 1e-4  # the ablations do something
    np.testing.assert_allclose(effects[True]["kl"], effects[False]["kl"], atol=1e-6)
    np.testing.assert_allclose(effects[True]["dce"], effects[False]["dce"], atol=1e-5)
