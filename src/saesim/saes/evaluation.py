"""How well a trained SAE reconstructs held-out rows of its store (``metrics.json``'s quality keys)."""

from __future__ import annotations

import numpy as np

from saesim.stores.activation_store import ActivationStore
from saesim.errors import SaesimError


def evaluate_sae(sae, store: ActivationStore, eval_mask: np.ndarray, chunk_rows: int = 4096) -> dict[str, float]:
    """Explained variance, MSE, L0 and dead fraction of an inference SAE on held-out rows."""
    import torch

    n = 0
    sq_err = 0.0
    l0_sum = 0.0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    sums = None
    sq_sums = None
    with torch.no_grad():
        for start, block in store.iter_chunks(chunk_rows):
            block = block[eval_mask[start : start + len(block)]]
            if len(block) == 0:
                continue
            x = torch.from_numpy(block).to(sae.device)
            z = sae.encode(x)
            x_hat = sae.decode(z)
            sq_err += float(((x_hat - x) ** 2).sum())
            active = z != 0
            l0_sum += float(active.sum())
            fired |= active.any(dim=0).cpu()
            xs = x.double().sum(0)
            xss = (x.double() ** 2).sum(0)
            sums = xs if sums is None else sums + xs
            sq_sums = xss if sq_sums is None else sq_sums + xss
            n += len(block)
    if n == 0:
        raise SaesimError(f"{store.path}: no evaluation rows")
    total_var = float((sq_sums - sums**2 / n).sum())
    if not total_var > 1e-12 * float(sq_sums.sum()):  # zero up to the rounding of the sums
        raise SaesimError(
            f"{store.path}: the {n} evaluation rows have zero variance (every row is the same), "
            "so explained variance is undefined; the store holds no signal to learn"
        )
    return {
        "explained_variance": 1.0 - sq_err / total_var,
        "mse": sq_err / (n * store.d),
        "l0": l0_sum / n,
        "dead_fraction": float((~fired).float().mean()),
        "eval_rows": n,
    }
