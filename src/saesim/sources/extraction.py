"""Run a hooked model over tokens and stream activations into stores.

* :func:`extract_to_stores` -- language models (``HookedTransformer`` or
  ``TransformerBridge``): every context of ``tokens`` goes through the model
  once; all requested hooks are read in that one forward pass, which stops
  after the deepest requested block (``stop_at_layer``).  Each batch is written
  to one store per hook before the next batch runs, so memory is bounded by
  one batch.  Row ``r`` of every store is the same token: ``context_ids[r]``,
  ``positions[r]`` and ``token_ids[r]`` say which.
* :func:`extract_modular_stores` -- the modular-addition model: all ``p * p``
  inputs at the final (``=``) position, optionally repeated in a seeded random
  order to a requested number of rows, with the Fourier ground truth in the
  store's ``ground_truth`` group.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from saesim.stores.activation_store import StoreWriter
from saesim.errors import SaesimError

_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.")
_PRE_BLOCK_HOOKS = ("hook_embed", "hook_pos_embed", "embed.", "hook_tokens")


def hook_layer(hook: str) -> int | None:
    """Block index a hook belongs to; -1 before the first block; None after the last (ln_final, unembed)."""
    match = _BLOCK_HOOK.match(hook)
    if match:
        return int(match.group(1))
    if hook.startswith(_PRE_BLOCK_HOOKS):
        return -1
    return None


def stop_layer_for(hooks: Sequence[str], n_layers: int) -> int | None:
    """``stop_at_layer`` that runs exactly the blocks the hooks need (None: run the whole model).

    A block's hooks all fire inside the block, so stopping before block
    ``deepest + 1`` loses nothing.
    """
    layers = [hook_layer(h) for h in hooks]
    if any(layer is None for layer in layers):
        return None
    stop = max(layers) + 1
    return stop if stop < n_layers else None


def check_hooks(model, hooks: Sequence[str]) -> None:
    """Refuse hook names the model does not have, naming them."""
    missing = [h for h in hooks if h not in model.hook_dict]
    if missing:
        examples = [h for h in model.hook_dict if h.startswith("blocks.0.")][:8]
        raise SaesimError(f"hooks {missing} not found in the model; e.g. {examples}")


def forward_hooks(model, tokens, hooks: Sequence[str], *, stop_early: bool = True) -> dict[str, Any]:
    """Activations ``{hook: [batch, pos, d]}`` of one forward pass over ``tokens`` (a torch tensor)."""
    import torch

    stop = stop_layer_for(hooks, model.cfg.n_layers) if stop_early else None
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=list(hooks), stop_at_layer=stop, return_cache_object=False)
    return {h: cache[h] for h in hooks}


def _store_attrs(model_name: str, hook: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"model": model_name, "hook": hook, **extra}


def extract_to_stores(
    model,
    tokens: np.ndarray,
    hooks: Sequence[str],
    out_paths: Mapping[str, str | os.PathLike],
    *,
    batch_size: int = 8,
    dtype: str = "float32",
    device: str | None = None,
    model_name: str | None = None,
    context_offset: int = 0,
    stop_early: bool = True,
    chunk_rows: int = 8192,
    attrs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Stream the activations of ``hooks`` over ``tokens`` ``[n_contexts, n_ctx]`` into one store per hook.

    ``out_paths`` maps each hook to its store path.  ``dtype`` is the stored
    dtype (``float32`` or ``float16``); the model runs in its own dtype on
    ``device`` (default: the model's device).  ``context_offset`` is added to
    context ids (for extracting a corpus in parts).  Returns a summary:
    ``paths``, ``n_rows``, ``n_tokens``, ``wall_s``, ``tokens_per_s``.
    """
    import torch
    from tqdm.auto import tqdm

    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.size == 0:
        raise SaesimError(f"extraction: tokens must be a non-empty [n_contexts, n_ctx] array, got shape {tokens.shape}")
    hooks = list(dict.fromkeys(hooks))
    missing = [h for h in hooks if h not in out_paths]
    if missing:
        raise SaesimError(f"extraction: no output path for hook(s) {missing}")
    check_hooks(model, hooks)
    device = device or str(next(model.parameters()).device)
    n_contexts, n_ctx = tokens.shape
    d = int(model.cfg.d_model)
    name = model_name or str(getattr(model.cfg, "model_name", "model"))
    common = {
        "n_ctx": int(n_ctx),
        "n_contexts": int(n_contexts),
        "stop_at_layer": stop_layer_for(hooks, model.cfg.n_layers) if stop_early else None,
        "extraction_device": device,
        "model_dtype": str(model.cfg.dtype).replace("torch.", ""),
        **(attrs or {}),
    }
    positions_block = np.tile(np.arange(n_ctx, dtype=np.int32), batch_size)
    start = time.perf_counter()
    with ExitStack() as stack:
        writers = {}
        for hook in hooks:
            attrs_h = _store_attrs(name, hook, {**common, "layer": hook_layer(hook) if hook_layer(hook) is not None else -2})
            writers[hook] = stack.enter_context(
                StoreWriter(out_paths[hook], d, dtype=dtype, chunk_rows=chunk_rows, with_tokens=True, attrs=attrs_h)
            )
        bar = tqdm(total=n_contexts * n_ctx, unit="tok", desc=f"extract {name}", disable=not progress, mininterval=2)
        for lo in range(0, n_contexts, batch_size):
            batch = tokens[lo : lo + batch_size]
            acts = forward_hooks(model, torch.as_tensor(batch, dtype=torch.long, device=device), hooks, stop_early=stop_early)
            rows = batch.size
            token_ids = batch.reshape(-1)
            positions = positions_block[:rows]
            context_ids = np.repeat(np.arange(lo, lo + len(batch), dtype=np.int32) + context_offset, n_ctx)
            for hook in hooks:
                block = acts[hook].reshape(rows, d).to("cpu", torch.float32).numpy()
                writers[hook].append(block, token_ids=token_ids, positions=positions, context_ids=context_ids)
            bar.update(rows)
        bar.close()
    wall = time.perf_counter() - start
    n_tokens = n_contexts * n_ctx
    return {
        "paths": {h: str(out_paths[h]) for h in hooks},
        "n_rows": n_tokens,
        "n_tokens": n_tokens,
        "wall_s": wall,
        "tokens_per_s": n_tokens / wall if wall > 0 else float("inf"),
    }


# --------------------------------------------------------------------------- modular model


def modular_activations(model, hooks: Sequence[str], *, batch_size: int = 4096) -> dict[str, np.ndarray]:
    """Activations ``{hook: [p*p, d]}`` at the final position for every input, row ``a * p + b``."""
    import torch

    from saesim.sources.modular import all_inputs

    check_hooks(model, hooks)
    p = int(model.cfg.d_vocab_out)
    device = next(model.parameters()).device
    inputs = torch.from_numpy(all_inputs(p)).to(device)
    parts: dict[str, list[np.ndarray]] = {h: [] for h in hooks}
    for lo in range(0, len(inputs), batch_size):
        acts = forward_hooks(model, inputs[lo : lo + batch_size], hooks)
        for h in hooks:
            parts[h].append(acts[h][:, -1].to("cpu", torch.float32).numpy())
    return {h: np.concatenate(v) for h, v in parts.items()}


def modular_row_order(p: int, n_rows: int | None, seed: int) -> np.ndarray:
    """Input indices for the store rows: all ``p*p`` once (in order) or, with ``n_rows``,
    whole seeded permutations concatenated and cut to ``n_rows``."""
    n = p * p
    if n_rows is None:
        return np.arange(n)
    if n_rows < 1:
        raise SaesimError(f"modular extraction: n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    reps = -(-n_rows // n)
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:n_rows]


def extract_modular_stores(
    model,
    hooks: Sequence[str],
    out_paths: Mapping[str, str | os.PathLike],
    *,
    n_rows: int | None = None,
    seed: int = 0,
    dtype: str = "float32",
    chunk_rows: int = 8192,
    model_name: str = "modular",
    rel_threshold: float = 0.5,
    max_keys: int | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one store per hook of the modular model's final-position activations.

    Rows: ``context_ids`` = input index ``a * p + b`` (so ``a = id // p``,
    ``b = id % p``), ``token_ids`` = the answer ``(a + b) mod p``,
    ``positions`` = 2 (the ``=`` token).  ``ground_truth`` group:
    ``key_frequencies``, ``frequency_norms``, ``embedding_subspace`` (shared)
    and ``activation_subspace`` (this hook's key-frequency subspace, see
    :mod:`saesim.analysis.fourier`), with attrs ``p``, ``random_baseline_embedding``,
    ``random_baseline_activation`` and the fraction of this hook's variance
    inside each subspace.  Returns a summary with the key frequencies.
    """
    from saesim.analysis import fourier

    missing = [h for h in hooks if h not in out_paths]
    if missing:
        raise SaesimError(f"modular extraction: no output path for hook(s) {missing}")
    p = int(model.cfg.d_vocab_out)
    truth = fourier.modular_ground_truth(model, rel_threshold=rel_threshold, max_keys=max_keys)
    acts = modular_activations(model, hooks)
    order = modular_row_order(p, n_rows, seed)
    answers = (np.divmod(order, p)[0] + np.divmod(order, p)[1]) % p
    summary: dict[str, Any] = {"p": p, "key_frequencies": truth["key_frequencies"].tolist(), "hooks": {}}
    for hook in hooks:
        act_space = fourier.activation_fourier_subspace(acts[hook], p, truth["key_frequencies"])
        gt_attrs = {
            "p": p,
            "key_rel_threshold": rel_threshold,
            "random_baseline_embedding": fourier.random_overlap_baseline(truth["embedding_subspace"]),
            "random_baseline_activation": fourier.random_overlap_baseline(act_space),
            "variance_in_embedding_subspace": fourier.explained_fraction(acts[hook], truth["embedding_subspace"]),
            "variance_in_activation_subspace": fourier.explained_fraction(acts[hook], act_space),
        }
        store_attrs = {
            "model": model_name,
            "hook": hook,
            "layer": hook_layer(hook) if hook_layer(hook) is not None else -2,
            "p": p,
            "row_order_seed": seed,
            **(attrs or {}),
        }
        with StoreWriter(out_paths[hook], acts[hook].shape[1], dtype=dtype, chunk_rows=chunk_rows, with_tokens=True, attrs=store_attrs) as w:
            for lo in range(0, len(order), chunk_rows):
                idx = order[lo : lo + chunk_rows]
                w.append(
                    acts[hook][idx],
                    token_ids=answers[lo : lo + chunk_rows],
                    positions=np.full(len(idx), 2, dtype=np.int32),
                    context_ids=idx,
                )
            w.add_group("ground_truth", {**truth, "activation_subspace": act_space}, gt_attrs)
        summary["hooks"][hook] = {"path": str(out_paths[hook]), "n_rows": int(len(order)), **gt_attrs}
    return summary
