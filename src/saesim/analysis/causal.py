"""Causal equivalence of matched latents: do two latents do the same thing to the model when removed?

Decoder agreement says two latents point the same way; functional replication asks that a
matched pair *do* the same thing. For a model with an SAE spliced in at its hook (the hook's
activation replaced by the SAE's reconstruction ``decode(encode(x))``), ablating latent ``i``
replaces it by ``decode(z)`` with ``z_i = 0`` instead. Per token ``t`` (a predicted position):

* ``kl[i, t]`` = KL(p_spliced || p_ablated) of the model's output distributions;
* ``dce[i, t]`` = CE_ablated - CE_spliced of the target token.

For a pair (latent ``i`` of SAE A, latent ``j`` of SAE B, each spliced into the same model at
its own hook) the causal correlation is the Pearson correlation over tokens of ``kl[i]`` with
``kl[j]`` (and of ``dce``). A latent and its exact copy give 1; unrelated latents about 0.

Models are reached through one callable, ``run(replacement) -> log-probs [n_tokens, vocab]``,
that runs the model on a fixed token set with the hook's activation replaced by
``replacement(act)`` (:func:`modular_runner` builds it for the modular-addition model), or a
batched one, ``run(replacement, batch)`` (:class:`LanguageModelRunner`: held-out contexts of a
language model, next-token predictions at the spliced positions, splicing as the downstream
loss does). Cost: one forward per ablated
latent plus one spliced forward per SAE, each over all tokens in batches. Memory: the log-probs
of all tokens twice (spliced and one ablation; ``n_tokens x vocab`` float64, 3.7 MB for the
modular model's 4,096 inputs) and the effects, ``2 x n_latents x n_tokens`` float64; bound it
with the number of tokens and pairs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from saesim.errors import SaesimError

#: pairs ablated per default (matched pairs spread over the |cos| range, and as many random pairs)
DEFAULT_CAUSAL_PAIRS = 24
#: matched pairs at or above this decoder |cos| make the headline median
HIGH_COS = 0.7


def _runner_parts(run, targets) -> list[tuple[Callable, Any]]:
    """``[(run of one part, its targets)]``: a batched runner (one with ``batches`` and
    ``targets(batch)``, e.g. :class:`LanguageModelRunner`) part by part, else ``run`` on ``targets``."""
    batches = getattr(run, "batches", None)
    if batches is None:
        if targets is None:
            raise SaesimError("causal equivalence: a runner without batches needs the target tokens")
        return [(run, targets)]
    return [(lambda replacement, b=b: run(replacement, b), run.targets(b)) for b in batches]


def ablation_effects(
    run: Callable[[Callable[[Any], Any]], Any],
    encode: Callable[[Any], Any],
    decode: Callable[[Any], Any],
    latents: Sequence[int],
    targets: Any = None,
) -> dict[str, np.ndarray]:
    """Per-token effects of ablating each of ``latents`` of one spliced SAE.

    ``run(replacement)`` returns log-probs ``[n_tokens, vocab]`` (torch) with the hook's
    activation replaced by ``replacement(act)``; ``targets`` ``[n_tokens]`` the target tokens.
    A batched runner (``run.batches``, ``run(replacement, batch)``, ``run.targets(batch)``:
    :class:`LanguageModelRunner`) is run batch by batch, every ablation of a batch before the
    next, so only one batch's log-probs are held; ``targets`` is then not needed.
    Returns ``{"kl": [L, n_tokens], "dce": [L, n_tokens]}`` float64.
    """
    import torch

    kl_parts, dce_parts = [], []
    for part, part_targets in _runner_parts(run, targets):
        tg = torch.as_tensor(np.asarray(part_targets), dtype=torch.long)
        memo: list = [None, None]  # (act, codes): a runner that passes the same tensor is encoded once

        def encode_once(act, memo=memo):
            if memo[0] is not act:
                memo[0], memo[1] = act, encode(act)
            return memo[1]

        def spliced(act, encode_once=encode_once):
            return decode(encode_once(act))

        with torch.no_grad():
            base = part(spliced).double()
            p_base = base.exp()
            ce_base = -base.gather(-1, tg[:, None])[:, 0]
            kl = np.empty((len(latents), base.shape[0]))
            dce = np.empty_like(kl)
            for row, i in enumerate(latents):
                if not bool((memo[1][..., int(i)] != 0).any()):  # never active here: ablating it changes nothing
                    kl[row], dce[row] = 0.0, 0.0
                    continue

                def ablated(act, i=int(i), encode_once=encode_once):
                    z = encode_once(act).clone()
                    z[..., i] = 0
                    return decode(z)

                logp = part(ablated).double()
                kl[row] = (p_base * (base - logp)).sum(-1).clamp_min(0).cpu().numpy()
                dce[row] = (-logp.gather(-1, tg[:, None])[:, 0] - ce_base).cpu().numpy()
        kl_parts.append(kl)
        dce_parts.append(dce)
    return {"kl": np.concatenate(kl_parts, axis=1), "dce": np.concatenate(dce_parts, axis=1)}


def row_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of row ``k`` of ``a`` with row ``k`` of ``b`` (NaN where either is constant)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (a * b).sum(1) / den, np.nan)


def choose_pairs(rows: np.ndarray, cols: np.ndarray, cos: np.ndarray, n_a: int, n_b: int, n_pairs: int, seed: int = 0,
                 spacing: str = "rank"):
    """Matched pairs spread over the |cos| range and as many random pairs (independent latents of
    A and B). ``spacing="rank"``: evenly spaced ranks of the one-to-one matching; ``"cos"``: the
    pairs nearest to evenly spaced |cos| values from the highest to the lowest (each pair once) (more of the few
    high-|cos| pairs where most pairs sit low). Returns
    ``(matched_a, matched_b, matched_cos, random_a, random_b)``."""
    cos = np.asarray(cos)
    order = np.argsort(-cos, kind="stable")
    k = min(int(n_pairs), len(order))
    if spacing == "cos" and k:
        ranked = cos[order]  # descending
        taken: list[int] = []
        for target in np.linspace(ranked[0], ranked[-1], k):  # the nearest pair not yet taken
            near = np.argsort(np.abs(ranked - target), kind="stable")
            taken.append(int(next(j for j in near if j not in taken)))
        pick = order[np.sort(taken)]
    elif spacing in ("rank", "cos"):
        pick = order[np.unique(np.linspace(0, len(order) - 1, k).round().astype(int))] if k else order[:0]
    else:
        raise SaesimError(f"causal pairs: spacing must be 'rank' or 'cos', got {spacing!r}")
    rng = np.random.default_rng(seed)
    ra = rng.choice(n_a, size=int(n_pairs), replace=n_pairs > n_a)
    rb = rng.choice(n_b, size=int(n_pairs), replace=n_pairs > n_b)
    return np.asarray(rows)[pick], np.asarray(cols)[pick], np.asarray(cos)[pick], ra, rb


def mismatched_pairs(matched_a: Any, matched_b: Any, max_pairs: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random pairs among the matched latents: latent ``matched_a[k]`` of A with the partner
    ``matched_b[l]`` of another matched pair (``k != l``), every such pair or ``max_pairs`` of
    them drawn without replacement. Their latents are ablated for the matched pairs anyway, so
    this baseline costs no forward pass (the language-model job's choice, where forwards dominate)."""
    ma, mb = np.asarray(matched_a), np.asarray(matched_b)
    k, l = np.nonzero(~np.eye(len(ma), dtype=bool))
    keep = (ma[k] != ma[l]) & (mb[k] != mb[l])  # a latent matched twice is not a mismatch
    k, l = k[keep], l[keep]
    if max_pairs is not None and len(k) > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(len(k), size=int(max_pairs), replace=False))
        k, l = k[pick], l[pick]
    return ma[k], mb[l]


def causal_equivalence(run_a, run_b, sae_a, sae_b, targets, matched, random_pairs, measure: str = "cos") -> dict[str, Any]:
    """Causal correlations of matched and random pairs.

    ``run_*``: the model runner of each SAE's hook (see :func:`ablation_effects`; ``targets`` is
    None for batched runners, which know theirs); ``sae_*``: objects
    with torch ``encode``/``decode``; ``matched`` = (latents of A, latents of B, their similarity:
    decoder |cos| within a model, activation correlation across models, named by ``measure``);
    ``random_pairs`` = (latents of A, latents of B). Returns per-pair correlations of the KL and
    CE-change effects and the summary medians (matched pairs at similarity >= :data:`HIGH_COS`, all
    matched, random); keys ``<measure>``, ``high_<measure>``, ``*_median_high_<measure>`` and
    ``n_matched_high_<measure>``.
    """
    ma, mb, mcos = (np.asarray(v) for v in matched)
    ra, rb = (np.asarray(v) for v in random_pairs)
    lat_a = np.unique(np.concatenate([ma, ra])).astype(int)
    lat_b = np.unique(np.concatenate([mb, rb])).astype(int)
    eff_a = ablation_effects(run_a, sae_a.encode, sae_a.decode, lat_a, targets)
    eff_b = ablation_effects(run_b, sae_b.encode, sae_b.decode, lat_b, targets)
    ia = {int(v): k for k, v in enumerate(lat_a)}
    ib = {int(v): k for k, v in enumerate(lat_b)}

    def corr(xa, xb, key):
        return row_correlations(eff_a[key][[ia[int(v)] for v in xa]], eff_b[key][[ib[int(v)] for v in xb]])

    def med(v):
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        return float(np.median(v)) if len(v) else float("nan")

    out: dict[str, Any] = {
        "matched": {"a": ma.tolist(), "b": mb.tolist(), measure: mcos.tolist(),
                    "kl_corr": corr(ma, mb, "kl").tolist(), "dce_corr": corr(ma, mb, "dce").tolist()},
        "random": {"a": ra.tolist(), "b": rb.tolist(),
                   "kl_corr": corr(ra, rb, "kl").tolist(), "dce_corr": corr(ra, rb, "dce").tolist()},
        "n_tokens": int(eff_a["kl"].shape[1]),
        f"high_{measure}": HIGH_COS,
    }
    high = mcos >= HIGH_COS
    for key in ("kl", "dce"):
        out[f"{key}_corr_median_high_{measure}"] = med(np.asarray(out["matched"][f"{key}_corr"])[high])
        out[f"{key}_corr_median_matched"] = med(out["matched"][f"{key}_corr"])
        out[f"{key}_corr_median_random"] = med(out["random"][f"{key}_corr"])
    out[f"n_matched_high_{measure}"] = int(high.sum())
    return out


# ---- across models: latents paired by activation correlation on the same inputs ----------


def hook_activations(run) -> Any:
    """The hook activation a runner passes to its replacement (one spliced-free run, every part
    concatenated), e.g. ``[n_inputs, d]`` of :func:`modular_runner`: what an SAE spliced there encodes."""
    import torch

    seen: list = []
    for part, _ in _runner_parts(run, ()):
        part(lambda act: seen.append(act) or act)
    return torch.cat(seen) if len(seen) > 1 else seen[0]


def activation_correlation(codes_a: Any, codes_b: Any) -> np.ndarray:
    """Pearson correlation ``[n_a, n_b]`` over inputs of every latent of A with every latent of B
    (codes ``[n_inputs, n_a]`` and ``[n_inputs, n_b]`` on the same inputs); NaN where a latent is
    constant (never fires) on them."""
    a = np.asarray(codes_a, np.float64)
    b = np.asarray(codes_b, np.float64)
    if a.shape[0] != b.shape[0]:
        raise SaesimError(f"activation correlation: codes cover {a.shape[0]} and {b.shape[0]} inputs; they must be the same inputs")
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.sqrt((a * a).sum(0)), np.sqrt((b * b).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a.T @ b) / np.where(na > 0, na, np.nan)[:, None] / np.where(nb > 0, nb, np.nan)[None, :]


def activation_matching(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one pairing of the latents that fire (finite rows and columns of ``corr``) maximising
    the summed activation correlation (Hungarian, scipy). Returns ``(rows, cols, corr)``, latent
    indices into the full SAEs."""
    from saesim.similarity.matching import _linear_sum_assignment  # scipy's, without all of scipy.optimize

    linear_sum_assignment = _linear_sum_assignment()
    corr = np.asarray(corr, np.float64)
    alive_a = np.flatnonzero(np.isfinite(corr).any(1))
    alive_b = np.flatnonzero(np.isfinite(corr).any(0))
    sub = np.nan_to_num(corr[np.ix_(alive_a, alive_b)], nan=0.0)
    r, c = linear_sum_assignment(sub, maximize=True)
    return alive_a[r], alive_b[c], sub[r, c]


def cross_model_pairs(corr: np.ndarray, n_pairs: int, n_top: int = 0, seed: int = 0):
    """Pairs for causal equivalence across models: the one-to-one activation matching
    (:func:`activation_matching`), ``n_pairs`` of its pairs spread over the correlation range
    (:func:`choose_pairs`, ``spacing="cos"``) plus its ``n_top`` most correlated, and ``n_pairs``
    random pairs of latents that fire on the inputs (the baseline). Returns
    ``(matched_a, matched_b, matched_corr, random_a, random_b)``, matched pairs by decreasing correlation."""
    rows, cols, mcorr = activation_matching(corr)
    if not len(rows):
        raise SaesimError("causal equivalence across models: no latent of either SAE fires on the inputs")
    ma, mb, mc, _, _ = choose_pairs(rows, cols, mcorr, 1, 1, n_pairs, seed=seed, spacing="cos")
    top = np.argsort(-mcorr, kind="stable")[: int(n_top)]
    keep = {(int(a), int(b)): float(c) for a, b, c in zip(ma, mb, mc)}
    keep.update({(int(rows[k]), int(cols[k])): float(mcorr[k]) for k in top})
    order = sorted(keep, key=lambda ab: (-keep[ab], ab))
    alive_a = np.flatnonzero(np.isfinite(corr).any(1))
    alive_b = np.flatnonzero(np.isfinite(corr).any(0))
    rng = np.random.default_rng(seed)
    ra = alive_a[rng.choice(len(alive_a), size=int(n_pairs), replace=n_pairs > len(alive_a))]
    rb = alive_b[rng.choice(len(alive_b), size=int(n_pairs), replace=n_pairs > len(alive_b))]
    return (np.array([a for a, _ in order], int), np.array([b for _, b in order], int),
            np.array([keep[ab] for ab in order]), ra, rb)


def causal_equivalence_across_models(run_a, run_b, sae_a, sae_b, targets, n_pairs: int, n_top: int = 0,
                                     seed: int = 0) -> dict[str, Any]:
    """Causal equivalence of two models' SAEs on the same inputs (``run_a``/``run_b``: each model's
    runner at its SAE's hook, the same inputs in the same order, ``targets`` their labels). Decoder
    |cos| means nothing across residual bases, so latents are paired by the correlation of their
    activations on these inputs (:func:`cross_model_pairs`); then :func:`causal_equivalence`
    with ``measure="act_corr"``. Adds ``n_alive_a``/``n_alive_b`` (latents firing on the inputs)
    and the matching's median correlation."""
    import torch

    with torch.no_grad():
        codes_a = sae_a.encode(hook_activations(run_a)).float().cpu().numpy()
        codes_b = sae_b.encode(hook_activations(run_b)).float().cpu().numpy()
    corr = activation_correlation(codes_a, codes_b)
    ma, mb, mc, ra, rb = cross_model_pairs(corr, n_pairs, n_top, seed)
    out = causal_equivalence(run_a, run_b, sae_a, sae_b, targets, (ma, mb, mc), (ra, rb), measure="act_corr")
    _, _, all_corr = activation_matching(corr)
    out.update(n_alive_a=int(np.isfinite(corr).any(1).sum()), n_alive_b=int(np.isfinite(corr).any(0).sum()),
               matching_act_corr_median=float(np.median(all_corr)),
               n_matching_act_corr_high=int((all_corr >= HIGH_COS).sum()))
    return out


def modular_runner(model, hook: str, tokens: Any, batch_size: int = 4096) -> Callable:
    """``run(replacement)`` for the modular-addition model: log-probs at the last position of every
    input in ``tokens`` ``[n, 3]``, with ``replacement`` applied to the hook's last-position
    activation (the rows its stores and SAEs hold).

    At the last block's ``hook_resid_post`` / ``hook_mlp_out`` of a LayerNorm-free model (Nanda et
    al.'s) the rest of the model is the unembedding, so one cached forward serves every run and a
    run is one matrix product (tested equal to the full forward); other hooks run the model.
    """
    import torch

    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    if tokens.ndim != 2:
        raise SaesimError(f"modular runner: tokens must be [n, n_ctx], got {tuple(tokens.shape)}")
    c = model.cfg
    last = f"blocks.{c.n_layers - 1}."
    if c.normalization_type is None and hook in (last + "hook_resid_post", last + "hook_mlp_out"):
        # exact shortcut: without a final LayerNorm the logits are resid_post W_U + b_U, and both
        # hooks enter resid_post additively, so a replacement only adds (new - old) W_U
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens, names_filter=[hook, last + "hook_resid_post"])
        act = cache[hook][:, -1].float()
        resid = cache[last + "hook_resid_post"][:, -1].float()
        W_U, b_U = model.W_U.float(), model.b_U.float()

        def run_linear(replacement):
            with torch.no_grad():
                new = replacement(act).float()
                return ((resid + new - act) @ W_U + b_U).log_softmax(-1)

        return run_linear

    def run(replacement):
        def fn(act, hook=None):  # noqa: ARG001
            act = act.clone()
            act[:, -1] = replacement(act[:, -1]).to(act.dtype)
            return act

        outs = []
        with torch.no_grad():
            for s in range(0, tokens.shape[0], batch_size):
                logits = model.run_with_hooks(tokens[s : s + batch_size], fwd_hooks=[(hook, fn)])[:, -1]
                outs.append(logits.float().log_softmax(-1))
        return torch.cat(outs)

    return run


#: held-out contexts per forward of :class:`LanguageModelRunner` (its log-probs are contexts x n_ctx x vocab)
LM_BATCH_CONTEXTS = 4


class LanguageModelRunner:
    """A batched runner (see :func:`ablation_effects`) for a language model with an SAE spliced in.

    ``model`` is what :func:`saesim.analysis.downstream.downstream_losses` takes (a
    ``TransformerBridge`` or ``HookedTransformer``: ``run_with_hooks(tokens, fwd_hooks=...)``
    returning logits); ``tokens`` ``[n_contexts, n_ctx]`` held-out contexts; ``keep`` (bool
    ``[n_contexts, n_ctx]``) and ``max_norm`` say where the SAE is spliced, as for the downstream
    loss (:func:`saesim.analysis.downstream.splice`: elsewhere the clean activation passes).
    ``run(replacement, batch)`` runs the contexts of one batch (``batch_contexts`` of them) with
    the hook's activation replaced by ``replacement(act)`` and returns the next-token log-probs at
    the spliced positions (``keep[:, :-1]``), ``[n_predictions, vocab]``; ``targets(batch)``
    the tokens they predict. Each batch's hook activation is kept from its first run (the
    spliced baseline) and passed, the same tensor every time, to every later replacement, so
    an SAE encodes it once per batch. Where the hook lies between blocks (``start_at_hook``,
    :class:`saesim.analysis.downstream.StartAtHook`), each batch runs the whole model once (clean)
    and every replacement from the hook on: the same log-probs, the blocks before the hook not
    repeated. Memory: the model, ``n_contexts x n_ctx x d`` cached
    activations and one batch's log-probs (float64, three copies in :func:`ablation_effects`).
    """

    def __init__(self, model, hook: str, tokens: Any, keep: Any = None, max_norm: float | None = None,
                 batch_contexts: int = LM_BATCH_CONTEXTS, start_at_hook: bool = True):
        import torch

        from saesim.analysis.downstream import StartAtHook

        self.model, self.hook, self.max_norm = model, hook, max_norm
        self.tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if self.tokens.ndim != 2 or self.tokens.shape[1] < 2 or self.tokens.shape[0] == 0:
            raise SaesimError(f"language-model runner: tokens must be [n_contexts >= 1, n_ctx >= 2], got {tuple(self.tokens.shape)}")
        self.keep = torch.ones(self.tokens.shape, dtype=torch.bool) if keep is None else torch.as_tensor(np.array(keep, dtype=bool))
        if self.keep.shape != self.tokens.shape:
            raise SaesimError(f"language-model runner: keep mask is {tuple(self.keep.shape)}, tokens are {tuple(self.tokens.shape)}")
        self.batch_contexts = max(1, int(batch_contexts))
        self.batches = list(range(0, self.tokens.shape[0], self.batch_contexts))
        self._acts: dict = {}
        self.device = next(iter(model.parameters())).device
        # runs after a batch's first start at the hook (StartAtHook), where the hook is between blocks
        self._tail = StartAtHook(model) if start_at_hook else None
        self._start = self._tail.start(hook) if self._tail is not None else None
        self._tail_batch = None  # the batch whose clean run the tail's recorded block arguments are of
        self._checked = False

    def _slice(self, batch: int) -> slice:
        return slice(batch, batch + self.batch_contexts)

    def targets(self, batch: int) -> np.ndarray:
        sl = self._slice(batch)
        return self.tokens[sl, 1:][self.keep[sl, :-1]].numpy()

    def __call__(self, replacement: Callable[[Any], Any], batch: int):
        import torch

        from saesim.analysis.downstream import splice

        sl = self._slice(batch)
        acts = self._acts
        if self._start is not None:
            logits = self._from_hook(replacement, batch, sl)
            if logits is not None:
                logp = logits.float().log_softmax(-1)[:, :-1]
                return logp[self.keep[sl, :-1].to(logp.device)]

        def swap(act):
            if batch not in acts:  # the first run of a batch keeps its clean activation
                acts[batch] = act.detach().clone()
            return replacement(acts[batch])

        hook_fn = splice(swap, self.keep[sl], self.max_norm)
        with torch.no_grad():
            logits = self.model.run_with_hooks(self.tokens[sl].to(self.device), fwd_hooks=[(self.hook, hook_fn)])
        logp = logits.float().log_softmax(-1)[:, :-1]
        return logp[self.keep[sl, :-1].to(logp.device)]

    def _from_hook(self, replacement: Callable[[Any], Any], batch: int, sl: slice):
        """Logits of one batch run from the hook (the blocks before it are the clean run's), or None
        where the first check finds that running from the hook does not reproduce the clean logits."""
        import warnings

        import torch

        from saesim.analysis.downstream import splice

        tail = self._tail
        if self._tail_batch != batch:  # one clean run per batch records what the later blocks need
            tokens = self.tokens[sl].to(self.device)
            check = tail.input_hook(tail.n_layers - 1)
            with torch.no_grad():
                clean, acts = tail.clean(tokens, sorted({self.hook} | ({check} if not self._checked else set())))
                if not self._checked:
                    self._checked = True
                    if not tail.agrees(clean, acts[check]):
                        warnings.warn(f"causal equivalence: running {type(self.model).__name__} from {self.hook} does not "
                                      "reproduce its clean logits; using full forward passes", stacklevel=3)
                        self._start = None
                        return None
            self._acts.setdefault(batch, acts[self.hook])
            self._tail_batch = batch
        with torch.no_grad():
            spliced = splice(replacement, self.keep[sl], self.max_norm)(self._acts[batch])
            return tail.logits_from(self._start, spliced)
