"""Fourier ground truth of a modular-addition transformer (pure NumPy).

A model that has grokked (a + b) mod p represents its inputs through a few
*key frequencies* k: it embeds ``cos(2 pi k a / p)`` and ``sin(2 pi k a / p)``
and composes them (Nanda et al., 2023).  This module finds those frequencies
and the subspace of model space they occupy, and measures how much of each SAE
decoder direction lies inside that subspace.

Conventions
-----------
* :func:`fourier_basis` returns an orthonormal ``[p, p]`` matrix whose rows are
  the constant function and ``cos_k``, ``sin_k`` for ``k = 1 .. (p-1)//2``
  (p odd), in that order.
* Key frequencies come from the embedding ``W_E`` restricted to the ``p``
  number tokens (the ``=`` token is excluded).  The norm of frequency k is
  ``sqrt(|cos_k @ W_E|^2 + |sin_k @ W_E|^2)``.  Key frequencies are those
  whose norm is at least ``rel_threshold`` (default 0.5) times the largest,
  at most ``max_keys`` of them.
* The *embedding subspace* (:func:`key_frequency_subspace`) is the span of
  ``W_E^T cos_k`` and ``W_E^T sin_k`` over the key frequencies: the directions
  in which the key frequencies enter the residual stream.  It is a subspace
  of ``d_model`` space, so it applies to every ``d_model`` hook
  (``hook_resid_post``, ``hook_mlp_out``).
* The *activation subspace* (:func:`activation_fourier_subspace`) is
  hook-specific: from a hook's activations over all ``p * p`` inputs it takes
  the components that vary as the key frequencies of a, of b, or of a + b.
  It is offered because what a later hook carries (e.g. the MLP output, which
  writes ``cos(w (a+b))`` towards the unembedding) need not lie in the span of
  the embedding directions.  Measured on a grokked p = 113 model at the final
  position: the embedding subspace (10 dims) holds ~9% of the variance of
  ``hook_resid_post`` and ``hook_mlp_out`` (random: 8%), the activation
  subspace (20 dims) ~99%.  For SAEs on those hooks the activation subspace is
  the meaningful ground truth; both are stored.
* :func:`fourier_overlap` gives, per decoder row, the fraction of its squared
  norm inside a subspace; :func:`random_overlap_baseline` is the expectation
  for a random direction, ``dim(subspace) / d``.
* :func:`frequency_spectrum` gives, per latent, the fraction of its activation
  variance over all ``p * p`` inputs at each frequency k: the 2D Fourier
  components of the functions of a, b, a + b and a - b of frequency k.
"""

from __future__ import annotations

import numpy as np

from saesim.errors import SaesimError


def fourier_basis(p: int) -> tuple[np.ndarray, list[str]]:
    """Orthonormal Fourier basis of functions on Z_p: ``([p, p] rows, labels)``.

    Row 0 is the constant; rows ``2k-1`` and ``2k`` are ``cos_k`` and ``sin_k``.
    """
    if p < 3 or p % 2 == 0:
        raise SaesimError(f"fourier basis: p must be an odd integer >= 3, got {p}")
    x = np.arange(p)
    rows = [np.ones(p)]
    labels = ["const"]
    for k in range(1, (p - 1) // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * x / p))
        rows.append(np.sin(2 * np.pi * k * x / p))
        labels += [f"cos{k}", f"sin{k}"]
    basis = np.stack(rows)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    return basis, labels


def frequency_norms(embedding: np.ndarray, p: int) -> np.ndarray:
    """Norm of each frequency ``k = 1 .. (p-1)//2`` in a ``[p, d]`` embedding; index ``k-1``.

    ``embedding`` must hold one row per number token ``0 .. p-1`` (drop the
    ``=`` row of ``W_E`` first).
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.ndim != 2 or embedding.shape[0] != p:
        raise SaesimError(f"fourier: embedding must have shape [p={p}, d], got {embedding.shape}")
    basis, _ = fourier_basis(p)
    coeff_sq = ((basis @ embedding) ** 2).sum(axis=1)  # [p] squared norm per basis function
    return np.sqrt(coeff_sq[1::2] + coeff_sq[2::2])


def select_key_frequencies(norms: np.ndarray, *, rel_threshold: float = 0.5, max_keys: int | None = None) -> np.ndarray:
    """Key frequencies (1-based, ascending): norm >= ``rel_threshold`` x the largest norm.

    With ``max_keys`` only the strongest ``max_keys`` of those are kept.  The
    relative threshold separates the few frequencies a grokked model uses from
    the remains of memorisation (e.g. a model stopped 100 epochs after
    grokking: norms 5.9, 5.5, 4.6, 4.2, 4.0, then 2.5, 2.0, 1.5, ...).
    """
    if not 0.0 < rel_threshold <= 1.0:
        raise SaesimError(f"fourier: rel_threshold must be in (0, 1], got {rel_threshold}")
    norms = np.asarray(norms, dtype=np.float64)
    if norms.size == 0 or norms.max() <= 0:
        raise SaesimError("fourier: embedding has no non-constant Fourier component")
    order = np.argsort(-norms, kind="stable")
    n = int((norms >= rel_threshold * norms.max()).sum())
    if max_keys is not None:
        n = min(n, max_keys)
    return np.sort(order[:n] + 1)


def key_frequencies(
    embedding: np.ndarray, p: int, *, rel_threshold: float = 0.5, max_keys: int | None = None
) -> np.ndarray:
    """Key frequencies of a ``[p, d]`` number-token embedding; see :func:`select_key_frequencies`."""
    return select_key_frequencies(frequency_norms(embedding, p), rel_threshold=rel_threshold, max_keys=max_keys)


def orthonormal_rows(vectors: np.ndarray, rtol: float = 1e-6, atol: float = 0.0) -> np.ndarray:
    """Orthonormal basis ``[r, d]`` of the row span of ``vectors``.

    Singular values at or below ``max(rtol * largest, atol)`` are dropped.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.size == 0:
        return np.zeros((0, vectors.shape[-1]))
    _, s, vt = np.linalg.svd(vectors, full_matrices=False)
    cutoff = max(rtol * s.max(), atol) if s.size else 0.0
    rank = int((s > cutoff).sum()) if s.size and s.max() > 0 else 0
    return vt[:rank]


def key_frequency_subspace(embedding: np.ndarray, p: int, keys: np.ndarray) -> np.ndarray:
    """Orthonormal ``[r, d]`` basis of span{W_E^T cos_k, W_E^T sin_k : k in keys} (r <= 2 * len(keys))."""
    basis, _ = fourier_basis(p)
    keys = np.asarray(keys, dtype=int)
    if keys.size == 0 or keys.min() < 1 or keys.max() > (p - 1) // 2:
        raise SaesimError(f"fourier: key frequencies must be in 1..{(p - 1) // 2}, got {keys.tolist()}")
    rows = np.concatenate([basis[2 * keys - 1], basis[2 * keys]])  # [2K, p]
    return orthonormal_rows(rows @ np.asarray(embedding, dtype=np.float64))


def activation_fourier_subspace(
    activations: np.ndarray, p: int, keys: np.ndarray, rtol: float = 1e-3
) -> np.ndarray:
    """Hook-specific subspace ``[r, d]`` carrying the key frequencies of a, b and a + b.

    ``activations`` is ``[p * p, d]`` with row ``a * p + b`` (the order of
    :func:`saesim.sources.modular.all_inputs`).  For each key frequency k, the
    direction ``sum_ab acts[a, b] * f(a, b)`` is taken for f in cos/sin of
    ``2 pi k a / p``, ``2 pi k b / p`` and ``2 pi k (a+b) / p``; their span
    is returned, dropping directions weaker than ``rtol`` of the largest or of
    the RMS activation norm.
    """
    acts = np.asarray(activations, dtype=np.float64)
    if acts.ndim != 2 or acts.shape[0] != p * p:
        raise SaesimError(f"fourier: activations must have shape [p*p={p * p}, d], got {acts.shape}")
    acts = acts - acts.mean(axis=0)
    a, b = np.divmod(np.arange(p * p), p)
    funcs = []
    for k in np.asarray(keys, dtype=int):
        for arg in (a, b, a + b):
            phase = 2 * np.pi * k * arg / p
            funcs += [np.cos(phase), np.sin(phase)]
    directions = np.stack(funcs) @ acts / (p * p)
    # A direction whose amplitude is below rtol of the typical activation norm is noise.
    scale = float(np.sqrt((acts**2).sum(axis=1).mean()))
    return orthonormal_rows(directions, rtol=rtol, atol=rtol * scale)


def fourier_overlap(decoder_rows: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Fraction of each row's squared norm inside the subspace with orthonormal ``basis`` rows.

    ``decoder_rows`` is ``[n, d]`` (e.g. an SAE's ``W_dec``); returns ``[n]`` in [0, 1].
    Zero rows give 0.
    """
    rows = np.asarray(decoder_rows, dtype=np.float64)
    basis = np.asarray(basis, dtype=np.float64)
    if rows.ndim != 2 or basis.ndim != 2 or rows.shape[1] != basis.shape[1]:
        raise SaesimError(
            f"fourier overlap: decoder rows {rows.shape} and subspace basis {basis.shape} must share the last dimension"
        )
    inside = ((rows @ basis.T) ** 2).sum(axis=1)
    total = (rows**2).sum(axis=1)
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


def random_overlap_baseline(basis: np.ndarray) -> float:
    """Expected :func:`fourier_overlap` of a uniformly random direction: ``dim / d``."""
    basis = np.asarray(basis)
    return basis.shape[0] / basis.shape[1]


def explained_fraction(activations: np.ndarray, basis: np.ndarray) -> float:
    """Fraction of the (centred) activation variance inside the subspace."""
    acts = np.asarray(activations, dtype=np.float64)
    acts = acts - acts.mean(axis=0)
    return float(((acts @ np.asarray(basis).T) ** 2).sum() / (acts**2).sum())


def modular_ground_truth(model, *, rel_threshold: float = 0.5, max_keys: int | None = None) -> dict[str, np.ndarray]:
    """Key frequencies, their norms and the embedding subspace of a trained modular model.

    Returns arrays ready for a store's ``ground_truth`` group:
    ``frequency_norms`` [(p-1)/2], ``key_frequencies`` [K],
    ``embedding_subspace`` [r, d_model].
    """
    p = int(model.cfg.d_vocab_out)
    w_e = model.W_E.detach().cpu().numpy()[:p]
    norms = frequency_norms(w_e, p)
    keys = select_key_frequencies(norms, rel_threshold=rel_threshold, max_keys=max_keys)
    return {
        "frequency_norms": norms,
        "key_frequencies": keys,
        "embedding_subspace": key_frequency_subspace(w_e, p, keys),
    }


def frequency_spectrum(activations: np.ndarray, p: int) -> np.ndarray:
    """Fraction of each column's variance at each frequency ``k = 1 .. (p-1)//2``; index ``k-1``.

    ``activations`` is ``[p * p, n]`` with row ``a * p + b`` (e.g. ``n`` SAE latents over every
    input). Each column, centred and laid out as ``f[a, b]``, is Fourier transformed in 2D; the
    power of frequency k is that of the components ``(u, v)`` in ``{(k, 0), (0, k), (k, k), (k, -k)}``
    and their negatives: the functions ``cos / sin`` of ``2 pi k x / p`` for x = a, b, a + b and a - b,
    which hold every product of frequency-k terms of a and of b. Returns ``[n, (p-1)//2]`` fractions of
    the column's variance (Parseval: they sum to at most 1; the rest is in components mixing two
    frequencies). A constant column gives zeros.
    """
    acts = np.asarray(activations, dtype=np.float64)
    if p < 3 or p % 2 == 0:
        raise SaesimError(f"frequency spectrum: p must be an odd integer >= 3, got {p}")
    if acts.ndim != 2 or acts.shape[0] != p * p:
        raise SaesimError(f"frequency spectrum: activations must have shape [p*p={p * p}, n], got {acts.shape}")
    grid = (acts - acts.mean(axis=0)).T.reshape(-1, p, p)  # [n, a, b]
    power = np.abs(np.fft.fft2(grid)) ** 2  # [n, u, v]
    total = power.sum(axis=(1, 2))
    ks = np.arange(1, (p - 1) // 2 + 1)
    neg = (p - ks) % p
    at_k = (power[:, ks, 0] + power[:, neg, 0] + power[:, 0, ks] + power[:, 0, neg]
            + power[:, ks, ks] + power[:, neg, neg] + power[:, ks, neg] + power[:, neg, ks])
    # a constant column leaves only rounding error after centring: no spectrum
    varying = (total > 0) & (total > 1e-20 * p * p * (acts**2).sum(axis=0))
    return np.divide(at_k, total[:, None], out=np.zeros_like(at_k), where=varying[:, None])
