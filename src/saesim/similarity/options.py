"""The options of a comparison between two SAE dictionaries, in one frozen object.

How a pair is scored (cosine, thresholds, shared-latent threshold), within which
memory and where (budget, top-m, device), and its random baseline (draws, seed,
draw size) travel together as one :class:`ComparisonOptions` through every
comparison function (:func:`~saesim.similarity.compare_decoders`,
:func:`~saesim.similarity.random_decoder_baseline`, :mod:`saesim.similarity.suites`,
``saesim compare``, :func:`saesim.compare`, the suite cells). Its defaults agree
with the config schema's where it has the key (``tests/test_defaults.py``);
``saesim compare``'s flags default to them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from saesim.errors import SaesimError

from saesim.similarity.scan import DEFAULT_MEMORY_BUDGET_MB, DEFAULT_THRESHOLDS, DEFAULT_TOP_M

COSINES: tuple[str, ...] = ("abs", "signed")
"""How two decoder rows are scored: by |cos| or by signed cos (Song et al.'s PW-MCC)."""
DEFAULT_COSINE = "abs"
"""|cos|, as the reference notebooks and sae-lens's ``mean_correlation_coefficient`` do."""
DEFAULT_BASELINE_DRAW_SIZE = 2048
"""Latents per side of the random draws behind a one-to-one baseline; larger shapes are transferred from it (:func:`transfer_abs_cosine`)."""


class InvalidOption(SaesimError):
    """One comparison option out of range: ``key`` (a :class:`ComparisonOptions` field) and what is wrong."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class ComparisonOptions:
    """Every option of a decoder comparison beyond its inputs.

    * ``cosine``: score rows by ``"abs"`` |cos| or ``"signed"`` cos;
    * ``thresholds``: the thresholds of the matched and best-match fractions;
      ``shared_threshold``: what both the decoder and the encoder match of a shared latent reach;
    * ``memory_budget_mb``: peak extra memory of a scan or matching (MiB); ``top_m``:
      candidates kept per latent beyond the budget (sparse matching, splitting counts);
      ``device``: where torch computes (``"cpu"``, ``"cuda"``);
    * ``baseline_draws``: random SAE pairs behind the matching baseline (0: none, as
      ``saesim compare --baseline-draws 0``), ``seed`` their seed, and
      ``baseline_draw_size`` the largest side drawn (see :func:`baseline_draw_shape`; None: full size).

    Built once per comparison (from the CLI flags, the API keywords or a suite's config)
    and passed whole; a value out of range raises :class:`InvalidOption` naming its key.
    """

    cosine: str = DEFAULT_COSINE
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    shared_threshold: float = 0.7
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB
    top_m: int = DEFAULT_TOP_M
    device: str = "cpu"
    baseline_draws: int = 3
    seed: int = 0
    baseline_draw_size: int | None = DEFAULT_BASELINE_DRAW_SIZE

    def __post_init__(self) -> None:
        if self.cosine not in COSINES:
            raise InvalidOption("cosine", f"must be one of {', '.join(COSINES)}, got {self.cosine!r}")
        if isinstance(self.thresholds, (int, float)):
            raise InvalidOption("thresholds", f"expected a sequence of numbers, got {self.thresholds!r}")
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        for key, values in (("thresholds", self.thresholds), ("shared_threshold", (self.shared_threshold,))):
            for t in values:
                if not 0.0 <= t <= 1.0:
                    raise InvalidOption(key, f"must be |cos| values in [0, 1], got {t}")
        for key, low in (("seed", 0), ("baseline_draws", 0), ("top_m", 1)):
            if getattr(self, key) < low:
                raise InvalidOption(key, f"must be >= {low}, got {getattr(self, key)}")
        if not self.memory_budget_mb > 0:
            raise InvalidOption("memory_budget_mb", f"must be positive, got {self.memory_budget_mb}")
        if self.baseline_draw_size is not None and self.baseline_draw_size < 1:
            raise InvalidOption("baseline_draw_size", f"must be >= 1 or None, got {self.baseline_draw_size}")

    @classmethod
    def with_overrides(cls, options: ComparisonOptions | None, overrides: Mapping[str, Any], caller: str
                       ) -> ComparisonOptions:
        """``options`` (the defaults when None) with the fields named in ``overrides`` replaced (:func:`with_overrides`)."""
        return with_overrides(cls, options, overrides, caller)


def with_overrides(cls: type, options: Any, overrides: Mapping[str, Any], caller: str) -> Any:
    """``options`` (an instance of the frozen dataclass ``cls``; its defaults when None) with the
    fields named in ``overrides`` replaced: how a function takes ``options=`` and single fields of
    it as keywords. An unknown name raises TypeError, as an unknown keyword argument of ``caller`` would.
    """
    base = cls() if options is None else options
    if not isinstance(base, cls):
        raise TypeError(f"{caller}() options must be a {cls.__name__}, got {type(base).__name__}")
    unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    return replace(base, **overrides) if overrides else base
