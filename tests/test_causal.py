"""Causal equivalence (saesim.analysis.causal): a latent and its exact copy correlate 1, random pairs about 0."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from saesim.analysis.causal import ablation_effects, causal_equivalence, choose_pairs, row_correlations  # noqa: E402


class TinySAE:
    """A ReLU SAE in torch: encode relu(x W + b), decode z D."""

    def __init__(self, W, b, D):
        self.W, self.b, self.D = (torch.as_tensor(v, dtype=torch.float32) for v in (W, b, D))

    def encode(self, x):
        return torch.relu(x @ self.W + self.b)

    def decode(self, z):
        return z @ self.D


def _toy_model(seed=0, n=3000, d=8, vocab=11):
    """A 'model' whose output is softmax(tanh(act) U): run(replacement) = log-probs of replaced acts."""
    rng = np.random.default_rng(seed)
    acts = torch.as_tensor(rng.standard_normal((n, d)), dtype=torch.float32)
    U = torch.as_tensor(rng.standard_normal((d, vocab)), dtype=torch.float32)
    targets = rng.integers(0, vocab, n)

    def run(replacement):
        return (torch.tanh(replacement(acts)) @ U).log_softmax(-1)

    return run, targets, rng


def test_latent_and_its_exact_copy_correlate_one_random_pairs_near_zero():
    run, targets, rng = _toy_model()
    d, n_lat = 8, 16
    W = rng.standard_normal((d, n_lat))
    D = rng.standard_normal((n_lat, d)) * 0.5
    b = -0.5 * np.ones(n_lat)
    a = TinySAE(W, b, D)
    perm = rng.permutation(n_lat)
    copy = TinySAE(W[:, perm], b[perm], D[perm])  # B = A with its latents permuted: j = inverse of perm
    inv = np.argsort(perm)
    matched = (np.arange(n_lat), inv, np.ones(n_lat))
    random_pairs = (np.arange(n_lat), np.roll(inv, 3))
    res = causal_equivalence(run, run, a, copy, targets, matched, random_pairs)
    np.testing.assert_allclose(res["matched"]["kl_corr"], 1.0, atol=1e-6)
    np.testing.assert_allclose(res["matched"]["dce_corr"], 1.0, atol=1e-6)
    assert res["kl_corr_median_high_cos"] == pytest.approx(1.0, abs=1e-6)
    assert abs(res["kl_corr_median_random"]) < 0.15 and abs(res["dce_corr_median_random"]) < 0.15


def test_ablating_an_inactive_latent_changes_nothing():
    run, targets, rng = _toy_model(1)
    W = rng.standard_normal((8, 4))
    sae = TinySAE(W, np.array([-100.0, 0, 0, 0]), rng.standard_normal((4, 8)))
    eff = ablation_effects(run, sae.encode, sae.decode, [0, 1], targets)
    assert np.all(eff["kl"][0] == 0) and np.all(eff["dce"][0] == 0)
    assert eff["kl"][1].max() > 0 and np.all(eff["kl"] >= 0)


def test_pairs_span_the_cos_range_and_correlations_are_rowwise():
    rows, cols, cos = np.arange(10), np.arange(10)[::-1], np.linspace(0.1, 1.0, 10)
    ma, mb, mc, ra, rb = choose_pairs(rows, cols, cos, 10, 10, 4)
    assert mc.max() == 1.0 and mc.min() == pytest.approx(0.1) and len(ma) == 4 and len(ra) == 4
    x = np.random.default_rng(0).standard_normal((3, 50))
    np.testing.assert_allclose(row_correlations(x, 2 * x + 1), 1.0)
    assert np.isnan(row_correlations(np.ones((1, 5)), x[:1, :5]))[0]


def test_modular_runner_splices_at_the_hook():
    from saesim.analysis.causal import modular_runner
    from saesim.sources.modular import all_inputs, build_model, nanda_config

    model = build_model(nanda_config(p=7, d_model=16, n_heads=2, d_head=8, d_mlp=32, seed=0))
    tokens = all_inputs(7)
    run = modular_runner(model, "blocks.0.hook_mlp_out", tokens)
    clean = model(torch.as_tensor(tokens))[:, -1].float().log_softmax(-1)
    torch.testing.assert_close(run(lambda a: a), clean, atol=1e-5, rtol=1e-5)
    assert (run(torch.zeros_like) - clean).abs().max() > 1e-4  # the replacement reaches the output
    # the linear shortcut equals the full forward with the hook replaced
    slow = modular_runner(model, "blocks.0.hook_mlp_out", tokens)
    half = lambda a: 0.5 * a  # noqa: E731
    full = model.run_with_hooks(torch.as_tensor(tokens), fwd_hooks=[("blocks.0.hook_mlp_out", _last_only(half))])[:, -1].log_softmax(-1)
    torch.testing.assert_close(slow(half), full, atol=1e-5, rtol=1e-5)
    other = modular_runner(model, "blocks.0.hook_resid_mid", tokens)  # the general path
    torch.testing.assert_close(other(lambda a: a), clean, atol=1e-5, rtol=1e-5)


def _last_only(f):
    def hook(act, hook=None):
        act = act.clone()
        act[:, -1] = f(act[:, -1])
        return act

    return hook


def test_causal_script_on_a_modular_model_and_an_sae_with_its_copy(tmp_path):
    """The rule script end to end: SAE B is a byte copy of SAE A, so every matched pair is (i, i)
    at |cos| 1 and its effects correlate 1."""
    import json
    import runpy
    import shutil
    from pathlib import Path
    from types import SimpleNamespace

    pytest.importorskip("sae_lens")
    from saesim.sources.modular import build_model, nanda_config, save_modular_model
    from saesim.saes.training import SAESpec, build_training_sae

    root = Path(__file__).resolve().parents[1]
    cfg = nanda_config(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, seed=0)
    save_modular_model(tmp_path / "model", build_model(cfg), cfg, {})
    torch.manual_seed(0)
    sae = build_training_sae(SAESpec("topk", 32, 4, 0, 0), 16)
    sae.save_inference_model(str(tmp_path / "a"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    out = tmp_path / "causal.json"
    smk = SimpleNamespace(
        input=SimpleNamespace(model=str(tmp_path / "model"), a=str(tmp_path / "a"), b=str(tmp_path / "b")),
        output=[str(out)], log=[str(tmp_path / "job.log")], threads=1,
        params=SimpleNamespace(causal={"n_pairs": 6, "max_tokens": 121}, memory_budget_mb=64, identity=None),
        wildcards=SimpleNamespace(hook="blocks.0.hook_mlp_out"), rule="causal_equivalence", resources={},
        scriptdir=str(root / "scripts"),
    )
    runpy.run_path(str(root / "scripts" / "causal_equivalence.py"), init_globals={"snakemake": smk})
    r = json.loads(out.read_text())
    assert r["matched"]["a"] == r["matched"]["b"] and r["n_matched_high_cos"] == 6
    assert r["kl_corr_median_high_cos"] == pytest.approx(1.0, abs=1e-6)
    assert r["n_tokens"] == 121 and len(r["random"]["a"]) == 6


def _tiny_lm(seed=0, n_ctx=12, vocab=23):
    """A randomly initialised one-layer HookedTransformer (attention carries an ablation to later positions)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=n_ctx, d_head=8, n_heads=2, d_mlp=32, d_vocab=vocab,
                                  act_fn="relu", seed=seed)
    model = HookedTransformer(cfg)
    model.eval()
    tokens = np.random.default_rng(seed).integers(0, vocab, size=(40, n_ctx))
    return model, tokens


HOOK = "blocks.0.hook_resid_mid"


def test_language_model_runner_splices_at_the_hook_batch_by_batch():
    """Identity replacement = the clean model at the spliced positions (position 0 left out: its
    prediction sees no spliced activation); the batch size changes nothing."""
    from saesim.analysis.causal import LanguageModelRunner

    pytest.importorskip("transformer_lens")
    model, tokens = _tiny_lm()
    keep = np.ones(tokens.shape, dtype=bool)
    keep[:, 0] = False
    run = LanguageModelRunner(model, HOOK, tokens, keep, batch_contexts=7)
    assert run.batches == [0, 7, 14, 21, 28, 35]
    clean = model(torch.as_tensor(tokens)).log_softmax(-1)[:, :-1][torch.as_tensor(keep[:, :-1])]
    got = torch.cat([run(lambda a: a, b) for b in run.batches])
    torch.testing.assert_close(got, clean, atol=1e-5, rtol=1e-5)
    assert got.shape == (40 * 10, 23)
    np.testing.assert_array_equal(np.concatenate([run.targets(b) for b in run.batches]), tokens[:, 1:][keep[:, :-1]])
    assert (torch.cat([run(torch.zeros_like, b) for b in run.batches]) - clean).abs().max() > 1e-3
    # the same effects whatever the batching
    rng = np.random.default_rng(1)
    sae = TinySAE(rng.standard_normal((16, 6)), -0.5 * np.ones(6), rng.standard_normal((6, 16)) * 0.3)
    one = ablation_effects(LanguageModelRunner(model, HOOK, tokens, keep, batch_contexts=40), sae.encode, sae.decode, [0, 3])
    many = ablation_effects(run, sae.encode, sae.decode, [0, 3])
    np.testing.assert_allclose(many["kl"], one["kl"], atol=1e-6)
    np.testing.assert_allclose(many["dce"], one["dce"], atol=1e-5)


def test_language_model_latent_and_its_exact_copy_correlate_one_mismatches_do_not():
    """Through the language-model runner: SAE B = SAE A with its latents permuted. Each latent and
    its copy have causal correlation 1; the mismatched pairs (saesim.analysis.causal.mismatched_pairs,
    the language-model job's random baseline) are far below it."""
    from saesim.analysis.causal import LanguageModelRunner, mismatched_pairs

    pytest.importorskip("transformer_lens")
    model, tokens = _tiny_lm(2)
    rng = np.random.default_rng(3)
    n_lat = 10
    W, D, b = rng.standard_normal((16, n_lat)), rng.standard_normal((n_lat, 16)) * 0.5, -1.0 * np.ones(n_lat)
    a = TinySAE(W, b, D)
    perm = rng.permutation(n_lat)
    copy = TinySAE(W[:, perm], b[perm], D[perm])
    inv = np.argsort(perm)
    run = LanguageModelRunner(model, HOOK, tokens, batch_contexts=16)
    ra, rb = mismatched_pairs(np.arange(n_lat), inv)
    assert len(ra) == n_lat * (n_lat - 1) and not np.any(inv[ra] == rb)
    res = causal_equivalence(run, run, a, copy, None, (np.arange(n_lat), inv, np.ones(n_lat)), (ra, rb))
    np.testing.assert_allclose(res["matched"]["kl_corr"], 1.0, atol=1e-6)
    np.testing.assert_allclose(res["matched"]["dce_corr"], 1.0, atol=1e-6)
    assert res["n_tokens"] == 40 * 11
    assert abs(res["dce_corr_median_random"]) < 0.2 and abs(res["kl_corr_median_random"]) < 0.2
    assert len(mismatched_pairs(np.arange(n_lat), inv, max_pairs=8)[0]) == 8


def test_cos_spacing_picks_pairs_nearest_evenly_spaced_cos_values():
    """Most pairs low, a few high: rank spacing gets one high pair, cos spacing spans the values."""
    cos = np.r_[0.95, 0.9, 0.85, np.linspace(0.3, 0.1, 97)]
    rows = cols = np.arange(100)
    by_rank = choose_pairs(rows, cols, cos, 100, 100, 5)[2]
    by_cos = choose_pairs(rows, cols, cos, 100, 100, 5, spacing="cos")[2]
    assert (by_rank >= 0.7).sum() == 1 and (by_cos >= 0.7).sum() == 2
    assert by_cos.max() == 0.95 and by_cos.min() == pytest.approx(0.1) and len(by_cos) == 5
    with pytest.raises(Exception, match="spacing"):
        choose_pairs(rows, cols, cos, 100, 100, 5, spacing="x")
