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

Memory: one batch of logits at a time (``batch_size x n_ctx x d_vocab`` float32,
three runs in turn); sums over batches are accumulated in float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import numpy as np

from saesim.errors import SaesimError

__all__ = ["DownstreamLoss", "downstream_loss", "downstream_losses", "splice"]


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
    at ``H`` hooks cost ``1 + H + S`` forward passes.
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

            def run(hook=None, fn=None):
                if hook is None:
                    return _log_softmax(model.run_with_hooks(batch, fwd_hooks=[]))[:, :-1]
                mask = masks[hook][s : s + batch_size] if hook in masks else None
                fwd = [(hook, splice(fn, mask, (max_norm or {}).get(hook)))]
                return _log_softmax(model.run_with_hooks(batch, fwd_hooks=fwd))[:, :-1]

            def ce(logp) -> float:
                return -logp.gather(-1, targets).double().sum().item()

            clean = run()
            ce_clean += ce(clean)
            p_clean = clean.exp()
            for hook in hooks:
                ce_zero[hook] += ce(run(hook, torch.zeros_like))
            for name, (hook, forward) in saes.items():
                spliced = run(hook, forward)
                ce_sae[name] += ce(spliced)
                kl[name] += (p_clean * (clean - spliced)).double().sum().item()  # KL(p_clean || p_sae)
            n_pred += targets.numel()
    return {
        name: DownstreamLoss(
            ce_clean / n_pred, ce_sae[name] / n_pred, ce_zero[hook] / n_pred, kl[name] / n_pred, n_pred, int(tokens.shape[0])
        )
        for name, (hook, _) in saes.items()
    }


def downstream_loss(
    model, tokens: Any, hook: str, sae_forward: Callable[[Any], Any], *, keep: Any | None = None, batch_size: int = 8
) -> DownstreamLoss:
    """:func:`downstream_losses` for one SAE at ``hook`` (``keep``: its bool position mask)."""
    masks = None if keep is None else {hook: keep}
    return downstream_losses(model, tokens, {"sae": (hook, sae_forward)}, keep=masks, batch_size=batch_size)["sae"]
