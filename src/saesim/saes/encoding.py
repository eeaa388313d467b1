"""The encoder of a saved sae-lens SAE in numpy, without importing sae-lens (about 10 CPU-seconds
per job): read from the folder's safetensors, applied with the architecture registry's numpy
activation (:func:`saesim.saes.architectures.saved_activation`). sae-lens semantics
(``sae.encode(x)``); the agreement is tested against sae-lens itself
(tests/test_synthetic.py, tests/test_sae_encoding.py). Jobs that only encode rows (per-latent
tables, feature pages, co-activation, comparisons by activations, ground truth) use it;
training and snapshots use sae-lens.

Memory: the weights, plus ``[rows, d_sae]`` float32 activations of the block the caller passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saesim.errors import SaesimError
from saesim.saes.architectures import saved_activation, saved_architectures

__all__ = ["NumpySAE", "encode_acts", "encode_fires", "load_encoder", "numpy_sae"]


def load_encoder(sae_dir) -> dict:
    """The encoder of a saved sae-lens SAE as float32 numpy arrays, read from its safetensors
    without importing sae-lens (which costs seconds per job): ``W_enc``, ``b_enc``, ``b_dec``,
    ``W_dec``, ``threshold`` (JumpReLU), and the cfg.json keys the encoder reads."""
    from saesim.saes.loading import CFG_FILE, SAE_LENS_WEIGHTS, _read_tensors, load_sae_weights

    w = load_sae_weights(sae_dir)
    folder = Path(sae_dir)
    cfg = w.cfg
    arch = cfg.get("architecture", "standard")
    readable = saved_architectures()
    if w.format != "sae_lens" or arch not in readable:
        raise SaesimError(f"{folder / CFG_FILE}: the numpy encoder reads sae-lens {'/'.join(readable)} SAE, got {w.format} {arch!r}")
    norm = cfg.get("normalize_activations", "none") or "none"
    if norm != "none":
        raise SaesimError(f"{folder / CFG_FILE}: normalize_activations={norm!r}; the numpy encoder reads 'none' only")
    t = _read_tensors(folder / SAE_LENS_WEIGHTS, ["b_enc", "threshold"])
    if "b_enc" not in t or (arch == "jumprelu" and "threshold" not in t):
        raise SaesimError(f"{folder / SAE_LENS_WEIGHTS}: no {'threshold' if 'b_enc' in t else 'b_enc'} tensor")
    return {
        "architecture": arch,
        "W_enc": w.W_enc,
        "b_enc": t["b_enc"],
        "b_dec": w.b_dec if w.b_dec is not None else np.zeros(w.d_in, np.float32),
        "W_dec": w.W_dec,
        "threshold": t.get("threshold"),
        "k": cfg.get("k"),
        "apply_b_dec_to_input": bool(cfg.get("apply_b_dec_to_input", True)),
        "rescale_acts_by_decoder_norm": bool(cfg.get("rescale_acts_by_decoder_norm", False)),
    }


def encode_acts(enc: dict, x: np.ndarray) -> np.ndarray:
    """``[rows, d_sae]`` float32 activations of an SAE (``sae.encode(x)`` in sae-lens) for rows ``x``;
    ``enc`` is :func:`load_encoder` of the SAE folder, whose architecture's activation function
    is the registry's (:func:`saesim.saes.architectures.saved_activation`)."""
    x = np.asarray(x, dtype=np.float32)
    if enc["apply_b_dec_to_input"]:
        x = x - enc["b_dec"]
    pre = x @ enc["W_enc"] + enc["b_enc"]
    return saved_activation(enc["architecture"])(pre, enc)


def encode_fires(enc: dict, x: np.ndarray) -> np.ndarray:
    """``[rows, d_sae]`` bool: which latents fire (``sae.encode(x) != 0`` in sae-lens) for rows ``x``."""
    return encode_acts(enc, x) > 0


@dataclass
class NumpySAE:
    """A saved sae-lens SAE as numpy arrays: ``encode(x)`` (float32 ``[rows, d_in]`` -> dense
    ``[rows, d_sae]``, as ``sae.encode``), ``decode(z)`` (``z @ W_dec + b_dec``), and the
    weights ``W_enc``, ``b_enc``, ``W_dec``, ``b_dec`` in sae-lens's layout."""

    encoder: dict
    source: str = ""

    @property
    def W_enc(self) -> np.ndarray:
        return self.encoder["W_enc"]

    @property
    def b_enc(self) -> np.ndarray:
        return self.encoder["b_enc"]

    @property
    def W_dec(self) -> np.ndarray:
        return self.encoder["W_dec"]

    @property
    def b_dec(self) -> np.ndarray:
        return self.encoder["b_dec"]

    def encode(self, x: Any) -> np.ndarray:
        return encode_acts(self.encoder, x)

    def decode(self, z: Any) -> np.ndarray:
        return np.asarray(z, dtype=np.float32) @ self.W_dec + self.b_dec


def numpy_sae(folder) -> NumpySAE | None:
    """:class:`NumpySAE` of a saved sae-lens SAE folder, or None where the numpy encoder cannot
    read it (another format, an architecture without a registered numpy activation, normalised
    activations): the caller then loads it with sae-lens."""
    from saesim.saes.loading import CFG_FILE

    folder = Path(folder)
    if not (folder / CFG_FILE).is_file():
        return None
    try:
        return NumpySAE(load_encoder(folder), str(folder))
    except SaesimError:
        return None
