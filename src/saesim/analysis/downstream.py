"""What a language model loses when an SAE's reconstruction replaces its activation.

The standard downstream measure of an LM SAE (Bricken et al. 2023; sae-lens and
SAEBench report it): run the model three times on the same held-out contexts,

* **clean** -- unchanged,
* **SAE** -- the activation at the SAE's hook replaced by the SAE's reconstruction,
* **zero** -- the activation at that hook replaced by zeros (zero ablation),

and compare their next-token cross-entropy:

    ce_loss_recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean)
    ce_loss_delta     = CE_sae - CE_clean
    kl_div            = mean over positions of KL(p_clean || p_sae)

1.0 means the reconstruction costs the model nothing; 0.0 means it is no better
than deleting the activation. Positions where the SAE was not trained (``keep``
is False: BOS, massive-activation outliers) keep their clean activation in both
the SAE and the zero run, so the measure covers exactly the rows the SAE models.

Start at the hook: the layers before a hook are the same in all three runs, so the
clean run is done once per batch, keeping the activation at each hook, and each
zero or SAE run only computes the blocks after the hook, the final norm and the
unembedding, from the replaced activation (:class:`StartAtHook`). That covers
hooks on the residual stream between blocks (``blocks.L.hook_resid_post`` /
``hook_resid_pre``; the bridge's ``blocks.L.hook_out`` / ``hook_in``) of a
``HookedTransformer`` (its own ``start_at_layer``) or a ``TransformerBridge``
(its blocks called in order with the arguments the wrapped model gave them in
the clean run); any other hook (``hook_mlp_out``, ...) or model runs the full
forward pass with a hook, as before. The numbers agree with the full forward
to float rounding; the first batch checks this on the last block and falls
back to full forwards (with a warning) if it does not hold.

Memory: one batch of logits at a time (``batch_size x n_ctx x d_vocab`` float32,
three runs in turn); sums over batches are accumulated in float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import re
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from saesim.errors import SaesimError

__all__ = ["DownstreamLoss", "StartAtHook", "downstream_loss", "downstream_losses", "splice"]


@dataclass(frozen=True)
class DownstreamLoss:
    """Mean next-token cross-entropy (nats) of the three runs and the KL of the SAE run."""

    ce_clean: float
    ce_sae: float
    ce_zero: float
    kl_div: float
    n_predictions: int
    n_contexts: int

    @property
    def ce_loss_recovered(self) -> float:
        gap = self.ce_zero - self.ce_clean
        return float("nan") if gap <= 0 else (self.ce_zero - self.ce_sae) / gap

    @property
    def ce_loss_delta(self) -> float:
        return self.ce_sae - self.ce_clean

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ce_loss_recovered": self.ce_loss_recovered, "ce_loss_delta": self.ce_loss_delta}


def splice(replacement: Callable[[Any], Any], keep: Any | None, max_norm: float | None = None) -> Callable:
    """A TransformerLens forward hook that swaps the activation for ``replacement(act)``.

    Only where ``keep`` (bool ``[batch, pos]``) is True and, with ``max_norm``,
    where the clean activation's L2 norm is at most ``max_norm``; elsewhere the
    clean activation passes through.
    """

    def hook(act, hook=None):  # noqa: ARG001 - TransformerLens passes the hook point
        new = replacement(act).to(act.dtype)
        if keep is None and max_norm is None:
            return new
        mask = act.new_ones(act.shape[:-1], dtype=bool) if keep is None else keep.to(act.device)
        if max_norm is not None:
            mask = mask & (act.norm(dim=-1) <= max_norm)
        mask = mask[..., None]
        return new * mask + act * ~mask

    return hook


_HOOKED_RESID = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|post)$")
_STATE_KWARGS = ("past_key_values", "past_key_value", "layer_past")  # a KV cache would grow on every replay


class StartAtHook:
    """Run ``model`` from the residual stream at a hook to its logits, reusing one clean run per batch.

    ``model`` is a ``HookedTransformer`` (its ``forward(resid, start_at_layer=...)``,
    with the attention mask / shortformer embedding :meth:`input_to_embed` gives the
    full forward) or a ``TransformerBridge``, which has no ``start_at_layer``: its
    blocks (the wrapped model's decoder layers) are called in order with the
    arguments the wrapped model passed them in the clean run (rotary position
    embeddings, attention mask, position ids; a KV cache dropped), then
    ``ln_final`` and ``unembed``. Use :meth:`start` to learn whether a hook is
    supported (``None``: run the full forward instead), :meth:`clean` once per
    batch, then :meth:`logits_from` per replaced activation.
    """

    def __init__(self, model):
        self.model = model
        self.kind = self._kind(model)
        self._batch = self._blocks_args = self._embed = None

    @staticmethod
    def _kind(model) -> str | None:
        try:
            from transformer_lens import HookedTransformer
            from transformer_lens.model_bridge import TransformerBridge
        except ImportError:  # pragma: no cover - transformer-lens is a dependency
            return None
        if isinstance(model, HookedTransformer):
            return "hooked"
        if isinstance(model, TransformerBridge) and all(hasattr(model, n) for n in ("blocks", "ln_final", "unembed")):
            return "bridge"
        return None

    @property
    def n_layers(self) -> int:
        return len(self.model.blocks)

    def start(self, hook: str) -> int | None:
        """Index of the block whose input is the activation at ``hook`` (``n_layers``: only the
        final norm and unembedding follow it); ``None`` if the hook is not between blocks."""
        if self.kind == "hooked":
            m = _HOOKED_RESID.match(hook)
            if m is None or int(m.group(1)) >= self.n_layers:
                return None
            return int(m.group(1)) + (m.group(2) == "post")
        if self.kind == "bridge":
            point = self.model.hook_dict.get(hook)
            for i, block in enumerate(self.model.blocks):
                if point is not None and point is getattr(block, "hook_in", None):
                    return i
                if point is not None and point is getattr(block, "hook_out", None):
                    return i + 1
        return None

    def input_hook(self, layer: int) -> str:
        """A hook whose activation is the input of block ``layer``."""
        return f"blocks.{layer}.hook_resid_pre" if self.kind == "hooked" else f"blocks.{layer}.hook_in"

    def clean(self, batch, hooks: list[str]):
        """Clean logits of ``batch`` and the clean activation at each of ``hooks`` (a dict)."""
        acts = {}

        def keeper(name):
            def keep(act, hook=None):  # noqa: ARG001
                acts[name] = act.detach().clone()

            return keep

        fwd = [(hook, keeper(hook)) for hook in hooks]
        first = min(self.start(h) for h in hooks)
        handles = []
        self._batch, self._blocks_args = batch, {}
        if self.kind == "bridge":
            for i in range(first, self.n_layers):
                handles.append(self.model.blocks[i].register_forward_pre_hook(self._record(i), with_kwargs=True))
        else:
            _, _, shortformer, mask = self.model.input_to_embed(batch)
            self._embed = {"shortformer_pos_embed": shortformer, "attention_mask": mask}
        try:
            logits = self.model.run_with_hooks(batch, fwd_hooks=fwd)
        finally:
            for handle in handles:
                handle.remove()
        missing = [i for i in range(first, self.n_layers) if self.kind == "bridge" and i not in self._blocks_args]
        if missing:
            raise RuntimeError(f"start at hook: blocks {missing} were not called by the wrapped model")
        return logits, acts

    def _record(self, i: int):
        def pre_hook(module, args, kwargs):  # noqa: ARG001
            kwargs = dict(kwargs)
            for name in _STATE_KWARGS:
                if name in kwargs:
                    kwargs[name] = None
            if "use_cache" in kwargs:
                kwargs["use_cache"] = False
            by_name = not args
            if by_name:
                kwargs.pop("hidden_states")
            self._blocks_args[i] = (tuple(args[1:]), kwargs, by_name)

        return pre_hook

    def logits_from(self, layer: int, resid):
        """Logits of the current batch with ``resid`` as the input of block ``layer``."""
        if self.kind == "hooked":
            return self.model(resid, start_at_layer=layer, tokens=self._batch, **self._embed)
        h = resid
        for i in range(layer, self.n_layers):
            args, kwargs, by_name = self._blocks_args[i]
            out = self.model.blocks[i](**kwargs, hidden_states=h) if by_name else self.model.blocks[i](h, *args, **kwargs)
            h = out[0] if isinstance(out, tuple) else out
        return self.model.unembed(self.model.ln_final(h))

    def agrees(self, clean_logits, last_input) -> bool:
        """Whether running the last block from its clean input reproduces ``clean_logits``
        (to float32 rounding: 1e-5 of the largest logit)."""
        import torch

        tail = self.logits_from(self.n_layers - 1, last_input)
        if tail.shape != clean_logits.shape:
            return False
        if torch.equal(tail, clean_logits):
            return True
        scale = float(clean_logits.abs().max()) + 1.0  # float32 rounding of the same sums in another order
        return float((tail.float() - clean_logits.float()).abs_().max()) <= 1e-5 * scale


def _log_softmax(logits):
    return logits.float().log_softmax(dim=-1)


def downstream_losses(
    model,
    tokens: Any,
    saes: Mapping[str, tuple[str, Callable[[Any], Any]]],
    *,
    keep: Mapping[str, Any] | None = None,
    max_norm: Mapping[str, float] | None = None,
    batch_size: int = 8,
    progress: bool = False,
    start_at_hook: bool = True,
) -> dict[str, DownstreamLoss]:
    """Clean, SAE-spliced and zero-ablated CE of ``model`` on ``tokens`` ``[n, n_ctx]``, for many SAEs.

    ``model`` is a ``HookedTransformer`` or ``TransformerBridge`` (anything with
    ``run_with_hooks(tokens, fwd_hooks=[(name, fn)])`` returning logits).
    ``saes`` maps a name to ``(hook, forward)``, ``forward`` taking an activation
    ``[..., d]`` to its reconstruction. ``keep`` maps a hook to a bool mask
    ``[n, n_ctx]`` of the positions to splice there (default: all), and
    ``max_norm`` a hook to the largest clean-activation norm spliced there (rows
    above it were left out of the SAE's training). The clean run
    is done once per batch and the zero-ablated run once per hook, so ``S`` SAEs
    at ``H`` hooks cost ``1 + H + S`` runs. With ``start_at_hook`` (default), a
    run at a residual-stream hook between blocks starts at the hook from the
    clean run's activation (:class:`StartAtHook`) instead of a full forward
    pass; the results agree to float rounding. ``start_at_hook=False``: full
    forward passes throughout.
    """
    import torch

    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    if tokens.ndim != 2 or tokens.shape[1] < 2 or tokens.shape[0] == 0:
        raise SaesimError(f"downstream loss: tokens must be [n_contexts >= 1, n_ctx >= 2], got {tuple(tokens.shape)}")
    if not saes:
        raise SaesimError("downstream loss: no SAEs given")
    masks = {}
    for hook, mask in (keep or {}).items():
        masks[hook] = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        if masks[hook].shape != tokens.shape:
            raise SaesimError(
                f"downstream loss: keep mask of {hook} is {tuple(masks[hook].shape)}, tokens are {tuple(tokens.shape)}"
            )
    hooks = sorted({hook for hook, _ in saes.values()})
    device = next(iter(model.parameters())).device
    tail = StartAtHook(model) if start_at_hook else None
    starts_at = {h: tail.start(h) for h in hooks} if tail is not None else {}
    starts_at = {h: layer for h, layer in starts_at.items() if layer is not None}
    checked = not starts_at
    ce_clean = 0.0
    ce_zero = dict.fromkeys(hooks, 0.0)
    ce_sae = dict.fromkeys(saes, 0.0)
    kl = dict.fromkeys(saes, 0.0)
    n_pred = 0
    starts = range(0, tokens.shape[0], batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="downstream loss", unit="batch")
    with torch.no_grad():
        for s in starts:
            batch = tokens[s : s + batch_size].to(device)
            targets = batch[:, 1:, None]
            acts = {}
            if starts_at:
                check = tail.input_hook(tail.n_layers - 1)
                logits, acts = tail.clean(batch, sorted(set(starts_at) | ({check} if not checked else set())))
                if not checked:
                    checked = True
                    if not tail.agrees(logits, acts[check]):
                        warnings.warn(
                            f"downstream loss: running {type(model).__name__} from the hook does not reproduce its "
                            "clean logits; using full forward passes",
                            stacklevel=2,
                        )
                        starts_at, acts = {}, {}
            else:
                logits = model.run_with_hooks(batch, fwd_hooks=[])

            def run(hook, fn):
                mask = masks[hook][s : s + batch_size] if hook in masks else None
                replace = splice(fn, mask, (max_norm or {}).get(hook))
                if hook in starts_at:
                    out = tail.logits_from(starts_at[hook], replace(acts[hook]))
                else:
                    out = model.run_with_hooks(batch, fwd_hooks=[(hook, replace)])
                return _log_softmax(out[:, :-1])

            def ce(logp) -> float:
                return -logp.gather(-1, targets).double().sum().item()

            clean = _log_softmax(logits[:, :-1])
            del logits
            ce_clean += ce(clean)
            p_clean = clean.exp()
            for hook in hooks:
                ce_zero[hook] += ce(run(hook, torch.zeros_like))
            for name, (hook, forward) in saes.items():
                spliced = run(hook, forward)
                ce_sae[name] += ce(spliced)
                terms = spliced.neg_().add_(clean).mul_(p_clean)  # p_clean (log p_clean - log p_sae), in place
                kl[name] += terms.sum(dtype=torch.float64).item()  # KL(p_clean || p_sae)
            n_pred += targets.numel()
    return {
        name: DownstreamLoss(
            ce_clean / n_pred, ce_sae[name] / n_pred, ce_zero[hook] / n_pred, kl[name] / n_pred, n_pred, int(tokens.shape[0])
        )
        for name, (hook, _) in saes.items()
    }


def downstream_loss(
    model, tokens: Any, hook: str, sae_forward: Callable[[Any], Any], *, keep: Any | None = None, batch_size: int = 8,
    start_at_hook: bool = True,
) -> DownstreamLoss:
    """:func:`downstream_losses` for one SAE at ``hook`` (``keep``: its bool position mask)."""
    masks = None if keep is None else {hook: keep}
    return downstream_losses(
        model, tokens, {"sae": (hook, sae_forward)}, keep=masks, batch_size=batch_size, start_at_hook=start_at_hook
    )["sae"]
