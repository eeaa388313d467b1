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


def _rotated_copy(model, R):
    """The same modular model in a rotated residual basis (resid' = resid R): every residual write
    right-multiplied by R, every read left-multiplied by R^T; without LayerNorm its outputs are equal."""
    import copy

    rot = copy.deepcopy(model)
    R = torch.as_tensor(R, dtype=torch.float32)
    sd = rot.state_dict()
    with torch.no_grad():
        for k in ("embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_O", "blocks.0.attn.b_O", "blocks.0.mlp.W_out", "blocks.0.mlp.b_out"):
            sd[k].copy_(sd[k] @ R)  # writes
        for k in ("blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V", "blocks.0.mlp.W_in", "unembed.W_U"):
            sd[k].copy_(R.T @ sd[k])  # reads
    return rot


def test_across_models_a_rotated_model_and_its_rotated_sae_correlate_one_random_pairs_near_zero():
    """Model B is model A in a randomly rotated residual basis and SAE B is SAE A rotated the same
    way with its latents permuted: decoder |cos| across them is meaningless, yet the activation
    matching finds every latent's copy (correlation 1) and their ablation effects correlate 1;
    random pairs of latents about 0."""
    from saesim.analysis.causal import (activation_correlation, causal_equivalence_across_models, hook_activations,
                                        modular_runner)
    from saesim.sources.modular import all_inputs, all_labels, build_model, nanda_config

    p, d, n_lat = 23, 16, 96
    model = build_model(nanda_config(p=p, d_model=d, n_heads=2, d_head=8, d_mlp=32, seed=0))
    rng = np.random.default_rng(0)
    R, _ = np.linalg.qr(rng.standard_normal((d, d)))
    rotated = _rotated_copy(model, R)
    tokens, labels = all_inputs(p), all_labels(p)
    run_a = modular_runner(model, "blocks.0.hook_mlp_out", tokens)
    run_b = modular_runner(rotated, "blocks.0.hook_mlp_out", tokens)
    torch.testing.assert_close(run_a(lambda a: a), run_b(lambda a: a), atol=1e-4, rtol=1e-4)  # the same function
    act = hook_activations(run_a).numpy()
    np.testing.assert_allclose(hook_activations(run_b).numpy(), act @ R, atol=1e-4)
    W = rng.standard_normal((d, n_lat))
    b = -np.quantile(act @ W, 0.7, axis=0)  # each latent fires on about 30% of the inputs
    D = rng.standard_normal((n_lat, d)) * 2 * np.abs(act).mean()
    sae_a = TinySAE(W, b, D)
    perm = rng.permutation(n_lat)
    sae_b = TinySAE((R.T @ W)[:, perm], b[perm], (D @ R)[perm])
    corr = activation_correlation(sae_a.encode(hook_activations(run_a)).numpy(), sae_b.encode(hook_activations(run_b)).numpy())
    np.testing.assert_allclose(corr[np.arange(n_lat), np.argsort(perm)], 1.0, atol=1e-4)

    res = causal_equivalence_across_models(run_a, run_b, sae_a, sae_b, labels, n_pairs=16, n_top=4)
    inv = np.argsort(perm)
    assert res["matched"]["b"] == inv[res["matched"]["a"]].tolist()  # every matched pair is a latent and its copy
    np.testing.assert_allclose(res["matched"]["act_corr"], 1.0, atol=1e-4)
    np.testing.assert_allclose(res["matched"]["kl_corr"], 1.0, atol=1e-4)
    np.testing.assert_allclose(res["matched"]["dce_corr"], 1.0, atol=1e-4)
    assert res["kl_corr_median_high_act_corr"] == pytest.approx(1.0, abs=1e-4)
    assert res["n_matched_high_act_corr"] == len(res["matched"]["a"]) >= 16
    # CE changes of unrelated latents are uncorrelated; KLs (all >= 0, large where the output is
    # fragile) share the inputs' sensitivity, so random pairs sit above 0 but far below 1 (here ~0.2)
    assert abs(res["dce_corr_median_random"]) < 0.1 and abs(res["kl_corr_median_random"]) < 0.5
    assert res["n_tokens"] == p * p and res["n_alive_a"] == res["n_alive_b"] == n_lat


def test_causal_across_models_script_on_one_model_twice_and_an_sae_with_its_copy(tmp_path):
    """The rule script end to end: model B is model A saved again and SAE B a byte copy of SAE A,
    so every latent's partner is itself at activation correlation 1 and its effects correlate 1;
    the provenance names both SAEs with their weight hashes. Models of different p are refused."""
    import json
    import runpy
    import shutil
    from pathlib import Path
    from types import SimpleNamespace

    pytest.importorskip("sae_lens")
    from saesim.hashes import file_sha256
    from saesim.sources.modular import build_model, nanda_config, save_modular_model
    from saesim.saes.training import SAESpec, build_training_sae

    root = Path(__file__).resolve().parents[1]
    cfg = nanda_config(p=11, d_model=16, n_heads=2, d_head=8, d_mlp=32, seed=0)
    model = build_model(cfg)
    for name in ("model_a", "model_b"):
        save_modular_model(tmp_path / name, model, cfg, {})
    torch.manual_seed(0)
    build_training_sae(SAESpec("topk", 32, 4, 0, 0), 16).save_inference_model(str(tmp_path / "a"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    out = tmp_path / "causal.json"
    hook = "blocks.0.hook_mlp_out"

    def smk(model_b):
        return SimpleNamespace(
            input=SimpleNamespace(model_a=str(tmp_path / "model_a"), model_b=str(tmp_path / model_b),
                                  sae_a=str(tmp_path / "a"), sae_b=str(tmp_path / "b")),
            output=[str(out)], log=[str(tmp_path / "job.log")], threads=1,
            params=SimpleNamespace(causal={"hooks": [hook, hook], "n_pairs": 6, "n_top": 2}),
            wildcards=SimpleNamespace(cmp="models"), rule="causal_across_models", resources={},
            scriptdir=str(root / "scripts"),
        )

    runpy.run_path(str(root / "scripts" / "causal_across_models.py"), init_globals={"snakemake": smk("model_b")})
    r = json.loads(out.read_text())
    assert r["matched"]["a"] == r["matched"]["b"] and len(r["matched"]["a"]) >= 6
    assert r["kl_corr_median_high_act_corr"] == pytest.approx(1.0, abs=1e-6)
    assert r["n_tokens"] == 121 and len(r["random"]["a"]) == 6 and r["inputs"]["p"] == 11
    assert r["a"]["sae_weights_sha256"] == r["b"]["sae_weights_sha256"] == file_sha256(tmp_path / "a" / "sae_weights.safetensors")
    assert r["a"]["hook"] == hook and r["b"]["model"].endswith("model_b")
    other = nanda_config(p=13, d_model=16, n_heads=2, d_head=8, d_mlp=32, seed=0)
    save_modular_model(tmp_path / "model_p13", build_model(other), other, {})
    with pytest.raises(SystemExit):  # rulekit.run ends the job with the error's one line in the log
        runpy.run_path(str(root / "scripts" / "causal_across_models.py"), init_globals={"snakemake": smk("model_p13")})
    assert "comparisons.models.causal: the models have p 11" in (tmp_path / "job.log").read_text()
