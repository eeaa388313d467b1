"""Model sources: the modular-addition transformer and pretrained language models.

Submodules import torch / TransformerLens lazily; this package itself is light.
"""

from __future__ import annotations

import os
import socket

from saesim.errors import SaesimError

HUB_HOST = "huggingface.co"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forces the Hugging Face hub off (1/true/yes/on, any case, as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub can be used: not forced offline (:func:`hub_offline`) and its host answers."""
    if hub_offline():
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_hub(what: str) -> None:
    """Raise one clear :class:`SaesimError` instead of hanging when ``what`` needs the hub offline.

    When the hub cannot be reached, ``HF_HUB_OFFLINE=1`` is set so that later
    Hugging Face calls in this process fail fast instead of retrying.
    """
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        raise SaesimError(
            f"{what}: needs the Hugging Face hub ({HUB_HOST}), which cannot be reached from this machine "
            "(offline or HF_HUB_OFFLINE=1); use a local path or the offline sources (smollm2, stdlib corpus)"
        )
