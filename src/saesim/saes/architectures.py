"""SAE architectures: one registry of everything saesim knows about each.

An architecture is its config name, the config key that sets its sparsity, its name in
sae-lens's registry (``sae_lens.registry.get_sae_training_class``: the training SAE and config
it builds), the extra keyword arguments that config takes, the sae-lens inference
architecture its trained SAE is saved as and that SAE's activation function in numpy, and
how figures show it (label, colour). Config validation (:mod:`saesim.workflow.config`), SAE training
(:mod:`saesim.saes.training`), the numpy encoder (:func:`saesim.analysis.ground_truth.encode_acts`), the
workflow's choice of panels and the figures (:mod:`saesim.report.figures`) read it from here; the
config schema's ``architecture`` enum and the saved architectures are tested against it
(``tests/test_architectures.py``).

Adding an architecture: one :func:`register` call below, and its name in the schema's
``variant.architecture`` enum (plus its sparsity key in the ``allOf`` beside it).

Kept free of heavy imports (numpy too): the Snakefile imports this module at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from saesim.errors import SaesimError

#: sparsity keys a variant may carry, and the tag of each in a variant id (``topk-w50-k11``)
SPARSITY_TAGS = {"k": "k", "l1_coefficient": "l1c", "l0_coefficient": "l0c"}


def _no_kwargs(spec: Any) -> dict[str, Any]:
    return {}


def _relu(pre, enc: dict):
    """ReLU SAEs (``standard``)."""
    import numpy as np

    return np.maximum(pre, 0.0)


def _jumprelu(pre, enc: dict):
    """JumpReLU SAEs: a latent fires above its positive threshold."""
    import numpy as np

    return np.where((pre > 0) & (pre > enc["threshold"]), pre, 0.0).astype(np.float32)


def _topk(pre, enc: dict):
    """TopK SAEs: the ``k`` largest pre-activations (by decoder norm with
    ``rescale_acts_by_decoder_norm``), ReLU'd."""
    import numpy as np

    if enc["rescale_acts_by_decoder_norm"]:
        pre = pre * np.linalg.norm(enc["W_dec"], axis=1).astype(np.float32)
    k = int(enc["k"])
    if k >= pre.shape[1]:
        return np.maximum(pre, 0.0)
    top = np.argpartition(-pre, k - 1, axis=1)[:, :k]
    rows = np.arange(pre.shape[0])[:, None]
    out = np.zeros_like(pre)
    out[rows, top] = np.maximum(pre[rows, top], 0.0)
    return out


@dataclass(frozen=True)
class Architecture:
    name: str  # as written in the config (``variants[].architecture``)
    sparsity_key: str  # k, l1_coefficient or l0_coefficient
    label: str  # in figures and tables
    color: str  # in figures
    #: the activation function of its saved (inference) SAE in numpy: ``(pre-activations
    #: [rows, d_sae] float32, the encoder of saesim.analysis.ground_truth.load_encoder) -> activations``
    activation: Callable[[Any, dict], Any]
    #: the sae-lens inference architecture its trained SAE is saved as (``cfg.json``'s
    #: ``architecture``; sae-lens saves BatchTopK SAEs as JumpReLU SAEs); default: ``name``
    saved_as: str = ""
    #: its name in sae-lens's registry (``get_sae_training_class``); default: ``name``
    sae_lens_name: str = ""
    integer_k: bool = False  # k must be a whole number (TopK); otherwise a float is passed
    #: where several k-sparse architectures could stand for one figure (the latent x truth
    #: heatmap), the lowest rank is chosen; ties between unranked ones go by name
    figure_rank: int = 100
    #: extra keyword arguments of the sae-lens config, from a saesim.saes.training.SAESpec
    training_kwargs: Callable[[Any], dict[str, Any]] = _no_kwargs

    def __post_init__(self) -> None:
        if self.sparsity_key not in SPARSITY_TAGS:
            raise SaesimError(f"architecture {self.name}: sparsity key must be one of {list(SPARSITY_TAGS)}, got {self.sparsity_key!r}")

    @property
    def sae_lens_architecture(self) -> str:
        """Its name in sae-lens's registry (``sae_lens.registry.get_sae_training_class``)."""
        return self.sae_lens_name or self.name

    @property
    def saved_architecture(self) -> str:
        """The sae-lens inference architecture its trained SAE is saved as."""
        return self.saved_as or self.name


#: name -> Architecture, in registration order
ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    if arch.name in ARCHITECTURES:
        raise SaesimError(f"architecture {arch.name!r} is registered twice")
    ARCHITECTURES[arch.name] = arch
    return arch


def get(name: str) -> Architecture:
    """The registered architecture ``name``; one clear error naming the allowed ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise SaesimError(f"unknown SAE architecture {name!r}; allowed: {', '.join(ARCHITECTURES)}") from None


def saved_activation(saved_architecture: str) -> Callable[[Any, dict], Any]:
    """The numpy activation function of a saved sae-lens SAE, by its ``cfg.json`` ``architecture``;
    one clear error naming the readable ones otherwise."""
    for arch in ARCHITECTURES.values():
        if arch.saved_architecture == saved_architecture:
            return arch.activation
    raise SaesimError(f"no numpy encoder for sae-lens {saved_architecture!r} SAEs; readable: {', '.join(saved_architectures())}")


def saved_architectures() -> list[str]:
    """The sae-lens inference architectures the registered ones are saved as, in registration order."""
    return list(dict.fromkeys(a.saved_architecture for a in ARCHITECTURES.values()))


def sparsity_keys() -> dict[str, str]:
    """``{architecture: its sparsity key}``."""
    return {a.name: a.sparsity_key for a in ARCHITECTURES.values()}


def figure_choice(counts: dict[str, int]) -> str:
    """The architecture a single-architecture figure shows, from ``{name: number of its
    variants}``: the most variants, then the lowest ``figure_rank``, then the name."""
    if not counts:
        raise SaesimError("no architecture to choose a figure's from")

    def key(name: str):
        arch = ARCHITECTURES.get(name)
        return (-counts[name], arch.figure_rank if arch else 1000, name)

    return min(counts, key=key)


def default_matryoshka_widths(width: int) -> list[int]:
    """Nested prefixes at 1/8, 1/4, 1/2 and all of the dictionary."""
    return sorted({max(1, width // 8), max(1, width // 4), max(1, width // 2), width})


def _standard_kwargs(spec: Any) -> dict[str, Any]:
    return {"l1_warm_up_steps": spec.sparsity_warm_up_steps}


def _jumprelu_kwargs(spec: Any) -> dict[str, Any]:
    return {
        "l0_warm_up_steps": spec.sparsity_warm_up_steps,
        "jumprelu_init_threshold": spec.jumprelu_init_threshold,
        "jumprelu_bandwidth": spec.jumprelu_bandwidth,
    }


def _matryoshka_kwargs(spec: Any) -> dict[str, Any]:
    widths = list(spec.matryoshka_widths) or default_matryoshka_widths(spec.width)
    if widths[-1] != spec.width:
        widths.append(spec.width)
    return {"matryoshka_widths": widths}


register(Architecture("standard", "l1_coefficient", "ReLU + L1", "#4C72B0", _relu, training_kwargs=_standard_kwargs))
register(Architecture("topk", "k", "TopK", "#DD8452", _topk, integer_k=True, figure_rank=1))
register(Architecture("batchtopk", "k", "BatchTopK", "#55A868", _jumprelu, saved_as="jumprelu", figure_rank=0))
register(Architecture("jumprelu", "l0_coefficient", "JumpReLU", "#C44E52", _jumprelu, training_kwargs=_jumprelu_kwargs))
register(
    Architecture(
        "matryoshka_batchtopk", "k", "Matryoshka BatchTopK", "#8172B3", _jumprelu, saved_as="jumprelu",
        figure_rank=2, training_kwargs=_matryoshka_kwargs,
    )
)
