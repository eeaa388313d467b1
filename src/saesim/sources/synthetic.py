"""Synthetic data with known ground truth, built on ``sae_lens.synthetic``.

A toy experiment's source is a ``SyntheticModelConfig`` (sae-lens's synthetic data
model: feature dictionary, firing probabilities, low-rank firing correlations,
hierarchies, magnitude distributions), given inline under ``source.model`` or by the
name of a preset in ``config/presets/<name>.yaml`` (``source.preset``) with
``source.model`` overriding some of its keys. The store holds ``model.sample_with_features``
rows and, in ``/ground_truth``, everything needed to score an SAE against the truth.

This module only imports sae-lens inside functions: :func:`resolve_source` and
:func:`expected_l0` run when the Snakefile is parsed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from saesim.errors import SaesimError

#: presets: one SyntheticModelConfig dict per file
PRESET_DIR = Path(__file__).resolve().parents[3] / "config" / "presets"
#: the first rows of a store whose true feature activations are kept (CSR), for classification metrics
TRUTH_ROWS = 8192
#: at most this many dense feature activations per ``sample_with_features`` call (bounded memory)
MAX_DENSE_ENTRIES = 1 << 23
#: above this many features the rows are the sparse product of the feature activations and the
#: dictionary (sae-lens's FeatureDictionary takes sparse input); below it, sample_with_features'
#: dense product, which at 16k features takes 80% of the sampling time
SPARSE_FORWARD_ABOVE = 4096
#: offset of the sampling seed from the model's seed (sae-lens builds the model from seed .. seed + 4)
SAMPLING_SEED_OFFSET = 1000


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str, where: str = "source.preset") -> dict:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SaesimError(f"{where}: unknown preset {name!r}; presets: {', '.join(preset_names())}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise SaesimError(f"{path}: a preset needs a 'model:' mapping (a SyntheticModelConfig)")
    return data


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "generator_name" not in value:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_source(source: dict, where: str = "source") -> dict:
    """The source with ``model`` = the preset's model updated by the source's own ``model`` keys."""
    source = copy.deepcopy(source)
    model = source.get("model", {})
    if "preset" in source:
        model = _merge(load_preset(source["preset"], f"{where}.preset")["model"], model)
    for key in ("num_features", "hidden_dim"):
        if key not in model:
            raise SaesimError(f"{where}.model: {key!r} is required (give it, or a preset)")
    source["model"] = model
    return source


def check_model_values(model: dict, where: str = "source.model") -> None:
    """Cross-key rules of the library the JSON schema cannot say, without importing sae-lens."""
    fp = model.get("firing_probability", {})
    name = fp.get("generator_name")
    if name in ("zipfian", "random", "linear") and "max_prob" in fp and "min_prob" in fp:
        lo, hi = fp["min_prob"], fp["max_prob"]
        if lo > hi or (lo == hi and name != "linear"):
            raise SaesimError(f"{where}.firing_probability: min_prob={lo} must be {'<=' if name == 'linear' else '<'} max_prob={hi}")
    corr = model.get("correlation")
    if corr is not None:
        rank, scale = corr.get("rank", 32), corr.get("correlation_scale", 0.1)
        if rank * scale**2 >= 1:
            raise SaesimError(f"{where}.correlation: rank * correlation_scale^2 = {rank * scale**2:g} must be < 1 (sae-lens caps rows otherwise)")
    if model.get("seed") is None:
        raise SaesimError(f"{where}.seed: a seed is required (the store must be reproducible)")
    check_hierarchy_size(model, where)


#: sae-lens's HierarchyConfig defaults, for a ``hierarchy`` mapping that leaves keys out
_HIERARCHY_DEFAULTS = {"total_root_nodes": 100, "branching_factor": 100, "max_depth": 2}


def hierarchy_size(hierarchy: dict) -> int:
    """The most features the library's ``generate_hierarchy`` can put in the forest ``hierarchy`` describes.

    ``total_root_nodes`` trees, each node above ``max_depth`` with ``branching_factor`` children
    (the upper end of a ``[min, max]`` range): roots * (1 + b + ... + b^depth).
    """
    h = {**_HIERARCHY_DEFAULTS, **{k: v for k, v in hierarchy.items() if v is not None}}
    b = h["branching_factor"]
    b = max(b) if isinstance(b, (list, tuple)) else b
    return int(h["total_root_nodes"]) * sum(int(b) ** i for i in range(int(h["max_depth"]) + 1))


def check_hierarchy_size(model: dict, where: str = "source.model") -> None:
    """Refuse a hierarchy with more nodes than ``num_features``.

    sae-lens's ``generate_hierarchy`` hands out feature indices until they run out and then
    silently stops: such a forest is cut down (or left as bare roots) while the config says
    otherwise.
    """
    hierarchy = model.get("hierarchy")
    if not isinstance(hierarchy, dict) or hierarchy.get("total_root_nodes", 1) == 0:
        return
    n = model.get("num_features")
    size = hierarchy_size(hierarchy)
    if isinstance(n, int) and size > n:
        h = {**_HIERARCHY_DEFAULTS, **hierarchy}
        raise SaesimError(
            f"{where}.hierarchy: {h['total_root_nodes']} roots x branching {h['branching_factor']} to depth "
            f"{h['max_depth']} take up to {size} features, but num_features={n}; sae-lens would cut the forest "
            "down without a word (use fewer roots, a smaller branching_factor or max_depth, or more features)"
        )


def _firing_probabilities_np(fp: dict, n: int) -> np.ndarray | None:
    """Closed form of the library's deterministic firing probabilities (None for ``random``)."""
    name = fp.get("generator_name", "zipfian")
    if name == "constant":
        return np.full(n, fp.get("probability", 0.1))
    hi, lo = fp.get("max_prob", 0.5 if name == "random" else 0.3), fp.get("min_prob", 0.01)
    if name == "random":
        return np.full(n, (hi + lo) / 2)
    if n == 1:
        return np.array([hi])
    if name == "linear":
        return np.linspace(hi, lo, n)
    p = 1.0 / np.arange(1, n + 1) ** fp.get("exponent", 1.0)
    return lo + (hi - lo) * (p - p.min()) / (p.max() - p.min())


def expected_l0(source: dict) -> float:
    """Sum of the marginal firing probabilities (exact without hierarchy; hierarchies lower it).

    The measured true L0 of a store is its ``true_l0`` attribute.
    """
    model = source["model"]
    fp = model.get("firing_probability", {"generator_name": "zipfian"})
    return float(_firing_probabilities_np(fp, model["num_features"]).sum())


def model_config(model: dict, where: str = "source.model"):
    """``SyntheticModelConfig.from_dict`` with the library's exceptions as one-line SaesimErrors naming the key."""
    import torch

    from sae_lens.synthetic import FiringProbabilityConfig, HierarchyConfig, MagnitudeConfig
    from sae_lens.synthetic.synthetic_model import (
        LowRankCorrelationConfig,
        OrthogonalizationConfig,
        SyntheticModelConfig,
    )

    def check(key, fn):
        try:
            return fn()
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise SaesimError(f"{where}.{key}: {exc}") from None

    n = model.get("num_features", 1)
    check("firing_probability", lambda: FiringProbabilityConfig.from_dict(model["firing_probability"]).generate(n, seed=0)
          if "firing_probability" in model else None)
    for key, cls in (("hierarchy", HierarchyConfig), ("correlation", LowRankCorrelationConfig), ("orthogonalization", OrthogonalizationConfig)):
        if model.get(key) is not None:
            check(key, lambda cls=cls, key=key: cls.from_dict(model[key]))
    for key in ("mean_firing_magnitudes", "std_firing_magnitudes"):
        if isinstance(model.get(key), dict):
            check(key, lambda key=key: MagnitudeConfig.from_dict(model[key]).generate(n, seed=0))
    check_model_values(model, where)
    check("dtype", lambda: getattr(torch, model.get("dtype", "float32")))
    d = dict(model)
    d.setdefault("firing_probability", {"generator_name": "zipfian"})
    cfg = check("(top level)", lambda: SyntheticModelConfig.from_dict(d))
    again = SyntheticModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    if again.to_dict() != cfg.to_dict():  # pragma: no cover - a library change
        raise SaesimError(f"{where}: does not round-trip through SyntheticModelConfig.to_dict/from_dict")
    return cfg


def build_model(model: dict, where: str = "source.model"):
    """The sae-lens ``SyntheticModel`` (CPU), deterministic from ``model['seed']``."""
    from sae_lens.synthetic import SyntheticModel

    cfg = model_config(model, where)
    return SyntheticModel(cfg, device="cpu")


def sample_rows(n_features: int, chunk_rows: int) -> int:
    """Rows per ``sample_with_features`` call: dense feature activations stay under MAX_DENSE_ENTRIES."""
    return max(1, min(chunk_rows, MAX_DENSE_ENTRIES // n_features))


def iter_samples(model, n_rows: int, chunk_rows: int, sparse_forward: bool | None = None) -> Iterator[tuple[np.ndarray, "Any"]]:
    """Yield ``(activations [rows, d] float32, feature activations [rows, n_features] torch)``.

    Depends only on the model's seed, ``n_rows`` and ``chunk_rows``; the global torch RNG
    (which sae-lens samples from) is restored afterwards. ``sparse_forward`` (default: more
    than SPARSE_FORWARD_ABOVE features) changes only the float rounding of the rows, not the
    random stream.
    """
    import torch

    if sparse_forward is None:
        sparse_forward = model.cfg.num_features > SPARSE_FORWARD_ABOVE
    step = sample_rows(model.cfg.num_features, chunk_rows)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(model.cfg.seed + SAMPLING_SEED_OFFSET)
        for start in range(0, n_rows, step):
            rows = min(step, n_rows - start)
            if sparse_forward:
                feats = model.activation_generator.sample(rows)
                hidden = model.feature_dict(feats.to_sparse())
            else:
                hidden, feats = model.sample_with_features(rows)
            yield hidden.numpy().astype(np.float32, copy=False), feats


def hierarchy_built(parent: np.ndarray, model) -> dict:
    """What the library actually built: roots, features in the forest, depth (recorded in the store)."""
    roots = list(model.hierarchy.roots) if model.hierarchy is not None else []
    depth, stack, n_nodes = 0, [(r, 0) for r in roots], 0
    while stack:
        node, dep = stack.pop()
        n_nodes += node.feature_index is not None
        depth = max(depth, dep)
        stack.extend((c, dep + 1) for c in node.children)
    return {"n_roots": len(roots), "n_features_in_forest": int(n_nodes), "max_depth": int(depth) if roots else 0,
            "n_children": int((parent >= 0).sum())}


def hierarchy_arrays(model) -> tuple[np.ndarray, np.ndarray]:
    """``parent`` (-1: root or outside the hierarchy) and ``exclusive_children`` per feature."""
    n = model.cfg.num_features
    parent = np.full(n, -1, dtype=np.int64)
    exclusive = np.zeros(n, dtype=bool)
    stack = [(r, -1) for r in (model.hierarchy.roots if model.hierarchy is not None else [])]
    while stack:
        node, up = stack.pop()
        idx = node.feature_index
        if idx is not None:
            parent[idx] = up
            exclusive[idx] = bool(node.mutually_exclusive_children)
        stack.extend((c, idx if idx is not None else up) for c in node.children)
    return parent, exclusive


#: beside ``true_l0`` and ``expected_l0`` in a store's /ground_truth: which one to believe
L0_NOTE = ("true_l0 is the mean number of features firing per row, measured on every row of this store: the "
           "data's L0. expected_l0 is the sum of the configured marginal firing probabilities, before hierarchy "
           "gating and probability compensation: a property of the config, not of the data")


def write_synthetic_store(path, model_dict: dict, n_rows: int, *, chunk_rows: int = 8192, dtype: str = "float32",
                          progress: bool = True, where: str = "source.model", model=None) -> dict:
    """Sample the synthetic model into an activation store with its ground truth; return a summary.

    ``model``: an already built ``SyntheticModel`` of ``model_dict`` (benchmarks time the two apart).
    """
    from scipy import sparse
    from tqdm.auto import tqdm

    from saesim.stores.activation_store import StoreWriter

    model = model if model is not None else build_model(model_dict, where)
    n, d = model.cfg.num_features, model.cfg.hidden_dim
    fired = np.zeros(n, dtype=np.int64)
    truth_rows = min(TRUTH_ROWS, n_rows)
    truth_parts, done = [], 0
    attrs = {"model": "toy", "hook": "toy", "config": json.dumps(model.cfg.to_dict(), sort_keys=True)}
    with StoreWriter(path, d, dtype=dtype, chunk_rows=chunk_rows, attrs=attrs) as writer:
        for acts, feats in tqdm(iter_samples(model, n_rows, chunk_rows), total=-(-n_rows // sample_rows(n, chunk_rows)),
                                desc="synthetic samples", disable=not progress):
            writer.append(acts)
            fired += (feats > 0).sum(dim=0).numpy()
            if done < truth_rows:
                truth_parts.append(sparse.csr_matrix(feats[: truth_rows - done].numpy()))
            done += acts.shape[0]
        truth = sparse.vstack(truth_parts).tocsr()
        true_l0 = float(fired.sum() / n_rows)
        gen = model.activation_generator
        corr = model.correlation_matrix
        parent, exclusive = hierarchy_arrays(model)
        writer.add_group(
            "ground_truth",
            {
                "features": model.feature_dict.feature_vectors.detach().numpy().astype(np.float32),
                "bias": model.feature_dict.bias.detach().numpy().astype(np.float32),
                "firing_probabilities": gen.firing_probabilities.numpy().astype(np.float64),
                "firing_rates": fired / n_rows,
                "mean_magnitudes": gen.mean_firing_magnitudes.numpy().astype(np.float32),
                "std_magnitudes": gen.std_firing_magnitudes.numpy().astype(np.float32),
                "correlation_factor": (corr.correlation_factor.numpy() if corr is not None else np.zeros((n, 0))).astype(np.float32),
                "correlation_diag": (corr.correlation_diag.numpy() if corr is not None else np.ones(n)).astype(np.float32),
                "hierarchy_parent": parent,
                "hierarchy_exclusive_children": exclusive.astype(np.int8),
                "truth_indptr": truth.indptr.astype(np.int64),
                "truth_indices": truth.indices.astype(np.int32),
                "truth_values": truth.data.astype(np.float32),
            },
            attrs={"true_l0": true_l0, "expected_l0": float(gen.firing_probabilities.sum()), "truth_rows": truth_rows,
                   "l0_note": L0_NOTE,
                   "hierarchy_built": json.dumps(hierarchy_built(parent, model), sort_keys=True),
                   "synthetic_model_config": json.dumps(model.cfg.to_dict(), sort_keys=True)},
        )
        writer.attrs["true_l0"] = true_l0
    return {"n_rows": n_rows, "d": d, "n_features": n, "true_l0": true_l0, "expected_l0": float(gen.firing_probabilities.sum())}


def truth_feature_activations(group: dict) -> "Any":
    """The stored true feature activations of the first ``truth_rows`` rows, as a scipy CSR matrix."""
    from scipy import sparse

    n_rows = len(group["truth_indptr"]) - 1
    return sparse.csr_matrix((group["truth_values"], group["truth_indices"], group["truth_indptr"]),
                             shape=(n_rows, group["features"].shape[0]))
