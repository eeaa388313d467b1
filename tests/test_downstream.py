"""Downstream loss (CE recovered, KL) on a small transformer trained here, with known answers."""

import numpy as np
import pytest
import torch

from saesim.analysis.downstream import downstream_loss

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def model_and_tokens():
    """A 2-layer transformer trained to predict t+1 mod 23: clean CE near 0, zero ablation far worse."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(0)
    cfg = HookedTransformerConfig(
        n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=23, n_ctx=16, act_fn="relu", seed=0
    )
    model = HookedTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        start = torch.randint(0, 23, (n, 1), generator=g)
        return (start + torch.arange(16)) % 23

    for _ in range(150):
        loss = model(batch(64), return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, batch(24).numpy()


def _standard_sae(d, W_enc, W_dec):
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=W_dec.shape[0]))
    with torch.no_grad():
        sae.W_enc.copy_(W_enc)
        sae.W_dec.copy_(W_dec)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return lambda x: sae.decode(sae.encode(x))


def test_identity_sae_recovers_everything_and_zero_decoder_nothing(model_and_tokens):
    model, tokens = model_and_tokens
    d = model.cfg.d_model
    eye = torch.eye(d)
    # ReLU(x) - ReLU(-x) = x: a 2d-latent sae-lens SAE that is exactly the identity
    identity = _standard_sae(d, torch.cat([eye, -eye], dim=1), torch.cat([eye, -eye], dim=0))
    res = downstream_loss(model, tokens, HOOK, identity, batch_size=8)
    assert res.ce_zero - res.ce_clean > 1.0, res  # the test model depends on the hook
    assert res.ce_loss_recovered == pytest.approx(1.0, abs=1e-4)
    assert res.kl_div == pytest.approx(0.0, abs=1e-5)
    assert res.ce_loss_delta == pytest.approx(0.0, abs=1e-5)
    assert res.n_predictions == tokens.shape[0] * (tokens.shape[1] - 1)

    zero = _standard_sae(d, torch.cat([eye, -eye], dim=1), torch.zeros(2 * d, d))
    res0 = downstream_loss(model, tokens, HOOK, zero, batch_size=5)  # batches need not divide n
    assert res0.ce_loss_recovered == pytest.approx(0.0, abs=1e-6)
    assert res0.ce_clean == pytest.approx(res.ce_clean, rel=1e-6)
    assert res0.kl_div > 0.5


def test_half_reconstruction_lies_between_and_keep_mask_restricts_the_splice(model_and_tokens):
    model, tokens = model_and_tokens
    half = downstream_loss(model, tokens, HOOK, lambda x: 0.5 * x)
    assert 0.0 < half.ce_loss_recovered < 1.0
    # splicing nowhere leaves the SAE run clean (and the zero run too: no gap, recovered undefined)
    none = downstream_loss(model, tokens, HOOK, lambda x: 0 * x, keep=np.zeros(tokens.shape, bool))
    assert none.ce_sae == pytest.approx(none.ce_clean, rel=1e-6)
    assert np.isnan(none.ce_loss_recovered)
    # splicing only past position 0 hurts less than splicing everywhere
    keep = np.ones(tokens.shape, bool)
    keep[:, :8] = False
    part = downstream_loss(model, tokens, HOOK, lambda x: 0 * x, keep=keep)
    full = downstream_loss(model, tokens, HOOK, lambda x: 0 * x)
    assert part.ce_clean < part.ce_sae < full.ce_sae


def test_many_saes_in_one_pass_equal_one_at_a_time(model_and_tokens):
    from saesim.analysis.downstream import downstream_losses

    model, tokens = model_and_tokens
    hook2 = "blocks.1.hook_resid_post"
    saes = {"half0": (HOOK, lambda x: 0.5 * x), "neg1": (hook2, lambda x: -x), "id1": (hook2, lambda x: x)}
    many = downstream_losses(model, tokens, saes, batch_size=7)
    for name, (hook, fn) in saes.items():
        one = downstream_loss(model, tokens, hook, fn)
        assert many[name].ce_sae == pytest.approx(one.ce_sae, rel=1e-5)
        assert many[name].ce_zero == pytest.approx(one.ce_zero, rel=1e-5)
        assert many[name].kl_div == pytest.approx(one.kl_div, rel=1e-4, abs=1e-7)
    assert many["id1"].ce_loss_recovered == pytest.approx(1.0, abs=1e-5)
    assert many["half0"].ce_zero != pytest.approx(many["neg1"].ce_zero)  # zero ablation per hook


def test_max_norm_leaves_large_rows_clean(model_and_tokens):
    from saesim.analysis.downstream import downstream_losses

    model, tokens = model_and_tokens
    zero = {"z": (HOOK, lambda x: 0 * x)}
    everything = downstream_losses(model, tokens, zero)["z"]
    nothing = downstream_losses(model, tokens, zero, max_norm={HOOK: 0.0})["z"]
    assert nothing.ce_sae == pytest.approx(nothing.ce_clean, rel=1e-6)  # every row has norm > 0
    assert everything.ce_sae == pytest.approx(everything.ce_zero, rel=1e-6)
