"""SAE architectures: one registry of everything saesim knows about each.

An architecture is its config name, the config key that sets its sparsity, the sae-lens
training SAE it builds (``<Name>TrainingSAEConfig`` / ``<Name>TrainingSAE``), the extra
keyword arguments that config takes, and how figures show it (label, colour). Config
validation (:mod:`saesim.config`), SAE training (:mod:`saesim.training`), the workflow's
choice of panels and the figures (:mod:`saesim.plotting`) read it from here; the config
schema's ``architecture`` enum is tested against it (``tests/test_architectures.py``).

Adding an architecture: one :func:`register` call below, and its name in the schema's
``variant.architecture`` enum (plus its sparsity key in the ``allOf`` beside it).

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import SaesimError

#: sparsity keys a variant may carry, and the tag of each in a variant id (``topk-w50-k11``)
SPARSITY_TAGS = {"k": "k", "l1_coefficient": "l1c", "l0_coefficient": "l0c"}


def _no_kwargs(spec: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Architecture:
    name: str  # as written in the config (``variants[].architecture``)
    sparsity_key: str  # k, l1_coefficient or l0_coefficient
    sae_lens_config: str  # sae-lens training config class; the SAE class drops "Config"
    label: str  # in figures and tables
    color: str  # in figures
    integer_k: bool = False  # k must be a whole number (TopK); otherwise a float is passed
    #: where several k-sparse architectures could stand for one figure (the latent x truth
    #: heatmap), the lowest rank is chosen; ties between unranked ones go by name
    figure_rank: int = 100
    #: extra keyword arguments of the sae-lens config, from a saesim.training.SAESpec
    training_kwargs: Callable[[Any], dict[str, Any]] = _no_kwargs

    def __post_init__(self) -> None:
        if self.sparsity_key not in SPARSITY_TAGS:
            raise SaesimError(f"architecture {self.name}: sparsity key must be one of {list(SPARSITY_TAGS)}, got {self.sparsity_key!r}")

    @property
    def sae_lens_class(self) -> str:
        return self.sae_lens_config.removesuffix("Config")


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


register(Architecture("standard", "l1_coefficient", "StandardTrainingSAEConfig", "ReLU + L1", "#4C72B0", training_kwargs=_standard_kwargs))
register(Architecture("topk", "k", "TopKTrainingSAEConfig", "TopK", "#DD8452", integer_k=True, figure_rank=1))
register(Architecture("batchtopk", "k", "BatchTopKTrainingSAEConfig", "BatchTopK", "#55A868", figure_rank=0))
register(Architecture("jumprelu", "l0_coefficient", "JumpReLUTrainingSAEConfig", "JumpReLU", "#C44E52", training_kwargs=_jumprelu_kwargs))
register(
    Architecture(
        "matryoshka_batchtopk", "k", "MatryoshkaBatchTopKTrainingSAEConfig", "Matryoshka BatchTopK", "#8172B3",
        figure_rank=2, training_kwargs=_matryoshka_kwargs,
    )
)
