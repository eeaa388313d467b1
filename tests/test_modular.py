"""Modular-addition transformer: data, fast forward, determinism, learning, save/load."""

import json

import numpy as np
import pytest
import torch

from saesim.errors import SaesimError
from saesim.sources import modular

torch.set_num_threads(1)

TINY = dict(p=23, train_frac=0.6, lr=1e-2, warmup_epochs=5, eval_every=10)


def test_inputs_labels_and_split():
    x, y = modular.all_inputs(7), modular.all_labels(7)
    assert x.shape == (49, 3) and (x[:, 2] == 7).all()
    assert x[3 * 7 + 5].tolist() == [3, 5, 7] and y[3 * 7 + 5] == 1
    train, test = modular.train_test_split(7, 0.3, seed=1)
    assert len(train) == 15 and len(test) == 34
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(49))
    again, _ = modular.train_test_split(7, 0.3, seed=1)
    np.testing.assert_array_equal(train, again)


def _random_model(p, seed):
    """A :func:`modular.build_model` model with every parameter random (biases included)."""
    model = modular.build_model(modular.ModularConfig(p=p, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.1 * torch.randn(param.shape, generator=gen))
    return model


def _logits_and_grads(model, forward, tokens, labels):
    model.zero_grad(set_to_none=True)
    logits = forward(model, tokens)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    return logits.detach(), {name: param.grad for name, param in model.named_parameters()}


SHARED_LAST = modular.all_inputs(23)  # every row ends in "=": the token-table attention
MIXED_LAST = np.random.default_rng(5).integers(0, 24, size=(300, 3))  # any last token: per-row attention


@pytest.mark.parametrize(
    "tokens, unused_path",
    [(SHARED_LAST, "_attention_per_row"), (SHARED_LAST[:, 1:], "_attention_per_row"), (MIXED_LAST, "_attention_from_token_tables")],
    ids=["a-b-eq", "b-eq", "mixed-last"],
)
def test_fast_forward_equals_hooked_transformer_forward_with_gradients(tokens, unused_path, monkeypatch):
    model = _random_model(23, seed=3)
    assert modular.supports_fast_forward(model)
    x = torch.from_numpy(tokens)
    y = torch.from_numpy(np.random.default_rng(1).integers(0, 23, size=len(x)))
    ref_logits, ref_grads = _logits_and_grads(model, lambda m, t: m(t)[:, -1], x, y)
    monkeypatch.setattr(modular, unused_path, None)  # the other fast path must not be taken
    logits, grads = _logits_and_grads(model, modular.last_position_logits, x, y)
    assert float(ref_logits.abs().max()) > 0.1
    assert float((logits - ref_logits).abs().max()) < 1e-4
    assert set(grads) == set(ref_grads)
    for name, ref in ref_grads.items():  # gradients of a mean loss: at most ~0.2 here
        assert ref is not None and grads[name] is not None, name
        assert float((grads[name] - ref).abs().max()) < 1e-5, name


def test_two_layer_model_uses_the_general_forward():
    model = modular.build_model(modular.ModularConfig(p=23, n_layers=2))
    x = torch.from_numpy(modular.all_inputs(23)[:10])
    assert not modular.supports_fast_forward(model)
    with torch.no_grad():
        torch.testing.assert_close(modular.last_position_logits(model, x), model(x)[:, -1])


def test_training_is_deterministic():
    cfg = modular.ModularConfig(**{**TINY, "epochs": 20})
    m1, h1 = modular.train_modular_model(cfg, progress=False)
    m2, h2 = modular.train_modular_model(cfg, progress=False)
    for (name, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), name
    assert h1["train_loss"] == h2["train_loss"] and h1["test_acc"] == h2["test_acc"]


def test_tiny_model_learns_and_records_curves():
    _, hist = modular.train_modular_model(modular.ModularConfig(**{**TINY, "epochs": 150}), progress=False)
    assert hist["epochs"][0] == 10 and hist["epochs"][-1] == 150
    assert hist["train_acc"][-1] >= 0.9 > hist["train_acc"][0]
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["n_train"] == round(0.6 * 23 * 23)


@pytest.mark.slow
def test_tiny_model_groks():
    _, hist = modular.train_modular_model(modular.ModularConfig(**{**TINY, "epochs": 1500}), progress=False)
    assert hist["grok_epoch"] is not None and hist["final_test_acc"] >= 0.99


def test_save_load_round_trip(tmp_path):
    cfg = modular.ModularConfig(**{**TINY, "epochs": 10})
    model, hist = modular.train_modular_model(cfg, progress=False)
    out = modular.save_modular_model(tmp_path / "m", model, cfg, hist)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.json", "model.pt"]
    loaded, cfg2, hist2 = modular.load_modular_model(out)
    assert cfg2 == cfg and hist2["train_loss"] == hist["train_loss"]
    x = torch.from_numpy(modular.all_inputs(23))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert modular.evaluate_accuracy(loaded, 23) == modular.evaluate_accuracy(model, 23)


def test_bad_configs_and_dirs_are_clear_errors(tmp_path):
    with pytest.raises(SaesimError, match="unknown key"):
        modular.ModularConfig.from_dict({"p": 23, "learning_rate": 1.0})
    with pytest.raises(SaesimError, match="d_model"):
        modular.ModularConfig(d_model=100)
    with pytest.raises(SaesimError, match="missing config.json"):
        modular.load_modular_model(tmp_path)


def test_nanda_config_is_the_paper_setup():
    cfg = modular.nanda_config()
    assert (cfg.p, cfg.train_frac, cfg.lr, cfg.weight_decay, cfg.betas) == (113, 0.3, 1e-3, 1.0, (0.9, 0.98))
    assert json.loads(json.dumps(cfg.to_dict()))["betas"] == [0.9, 0.98]
