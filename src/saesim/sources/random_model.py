"""The random-weights model null: the experiment's model with its weights re-initialised.

Heap et al. (ICLR 2026, "Automated Interpretability Metrics Do Not Distinguish Trained and
Random Transformers") found SAEs on randomly initialised transformers scoring like those on
trained ones. The Gaussian null (saesim.sources.gaussian_null) removes every sparse structure;
a random-weights model keeps the token statistics (the same tokens go in, and a token's
identity is itself a sparse feature) and removes only what training taught the model. SAEs
trained on its activations with the same recipe and seeds give a second chance level.

The scheme is each family's own initialisation, with a fixed seed:

* :func:`reinitialize_hf_model` -- a ``transformers`` model (SmolLM2 and other Llama-family
  models) re-initialised by its own ``_init_weights`` module by module, in ``modules()``
  order, under ``torch.manual_seed(seed)``: for Llama every linear and embedding weight from
  normal(0, ``config.initializer_range``), biases 0, RMSNorm weights 1, rotary frequencies
  recomputed. ``keep_embeddings`` keeps the trained token embedding and unembedding bit for bit.
* :func:`random_modular_model` -- the modular-addition transformer of the same config before
  training: TransformerLens's own initialisation under ``seed`` (the config's seed gives
  exactly the model the training run started from); ``keep_embeddings`` copies the trained
  ``W_E``, ``W_U`` and ``b_U``.

:func:`weights_sha256` names a model's weights in the store's provenance.
"""

from __future__ import annotations

import hashlib
from typing import Any

#: the store attribute that records how a random-model store's model was made
STORE_ATTR = "model_null"


def _clear_init_flags(model) -> None:
    """Forget ``transformers``'s ``_is_hf_initialized`` marks (set on loaded weights), which would
    make ``_init_weights`` skip every tensor."""
    for module in model.modules():
        if getattr(module, "_is_hf_initialized", False):
            module._is_hf_initialized = False
        for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)):
            if getattr(t, "_is_hf_initialized", False):
                t._is_hf_initialized = False


def embedding_parameters(model) -> dict[str, Any]:
    """Name -> parameter of a ``transformers`` model's token embedding and unembedding (one
    entry when they are tied)."""
    wanted = [m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None]
    return {name: p for name, p in model.named_parameters() if any(p is w for w in wanted)}


def reinitialize_hf_model(model, seed: int, keep_embeddings: bool = False) -> dict[str, Any]:
    """Re-initialise a ``transformers`` model in place with its own ``_init_weights``, under
    ``torch.manual_seed(seed)`` (the global RNG state is restored afterwards).

    Every module is initialised in ``model.modules()`` order, so equal seeds give equal bytes.
    With ``keep_embeddings`` the token embedding and unembedding (:func:`embedding_parameters`)
    are copied back bit for bit afterwards. Returns what was done (for the store's provenance).
    """
    import torch

    kept = {name: p.detach().clone() for name, p in embedding_parameters(model).items()} if keep_embeddings else {}
    _clear_init_flags(model)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in model.modules():
            model._init_weights(module)
        params = dict(model.named_parameters())
        for name, value in kept.items():
            params[name].copy_(value)
    std = getattr(model.config, "initializer_range", None)
    return {
        "scheme": f"{type(model).__name__}._init_weights (normal(0, {std}) linear and embedding weights, norms 1)",
        "seed": int(seed),
        "keep_embeddings": bool(keep_embeddings),
        "kept": sorted(kept),
    }


def random_modular_model(cfg, seed: int | None = None, trained=None, keep_embeddings: bool = False):
    """The untrained modular-addition transformer of ``cfg`` (saesim.sources.modular.ModularConfig),
    initialised under ``seed`` (default ``cfg.seed``: the model its training started from).

    With ``keep_embeddings``, ``trained`` (the trained model) gives ``W_E``, ``W_U`` and ``b_U``.
    Returns ``(model, summary)``.
    """
    import dataclasses

    import torch

    from saesim.errors import SaesimError
    from saesim.sources.modular import build_model

    seed = cfg.seed if seed is None else int(seed)
    with torch.random.fork_rng(devices=[]):
        model = build_model(dataclasses.replace(cfg, seed=seed))
    kept = []
    if keep_embeddings:
        if trained is None:
            raise SaesimError("random modular model: keep_embeddings needs the trained model")
        names = ("embed.W_E", "unembed.W_U", "unembed.b_U")
        own, theirs = dict(model.named_parameters()), dict(trained.named_parameters())
        with torch.no_grad():
            for name in names:
                own[name].copy_(theirs[name])
        kept = list(names)
    model.eval()
    return model, {"scheme": "HookedTransformer init of the same config (the model before training)", "seed": seed,
                   "keep_embeddings": bool(keep_embeddings), "kept": kept}


def weights_sha256(model) -> str:
    """sha256 over a model's parameters (name, dtype, shape and bytes, in ``named_parameters`` order)."""
    import torch

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    return h.hexdigest()
