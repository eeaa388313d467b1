"""Defaults live in the schema: every library default with a schema counterpart equals it.

The workflow hands jobs the validated config (schema defaults filled in), so scripts and
resource estimates read no fallbacks of their own; the library keeps defaults for direct
use, and this test holds them to the schema's.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from saesim.workflow.config import validate_config
from saesim.errors import SaesimError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


def schema_default(path: str):
    """The default at a dotted path of properties, e.g. ``$defs.store.chunk_rows``, ``device``."""
    parts = path.split(".")
    node = SCHEMA["$defs"][parts[1]] if parts[0] == "$defs" else SCHEMA["properties"][parts[0]]
    for part in parts[2:] if parts[0] == "$defs" else parts[1:]:
        node = node["properties"][part]
    return node["default"]


def schema_defaults(def_name: str) -> dict:
    return {k: v["default"] for k, v in SCHEMA["$defs"][def_name]["properties"].items() if isinstance(v, dict) and "default" in v}


def library_defaults(obj) -> dict:
    """Keyword defaults of a function or dataclass (no factories)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: f.default for f in dataclasses.fields(obj) if f.default is not dataclasses.MISSING}
    return {n: p.default for n, p in inspect.signature(obj).parameters.items() if p.default is not inspect.Parameter.empty}


def plain(value):
    return list(value) if isinstance(value, tuple) else value


def lib():
    from saesim.sources.corpus import build_corpus
    from saesim.sources.extraction import extract_modular_stores, extract_to_stores
    from saesim.sources.language import LanguageModelSpec
    from saesim.sources.modular import ModularConfig
    from saesim.similarity import ComparisonOptions
    from saesim.sources.synthetic import write_synthetic_store
    from saesim.saes.training import SAESpec
    from saesim.similarity.universality import CodeComparisonOptions, compare_neuron_activations

    return locals()


#: dataclasses that mirror one schema definition: every key both name has one default,
#: and every schema default is a field (except the keys listed, which other code reads)
MIRRORS = [
    ("ModularConfig", "modular_source", {"key_rel_threshold"}),  # extract_modular_stores(rel_threshold=)
    ("SAESpec", "training", set()),
]

#: (library object, its parameter or field, the schema path it is configured by)
PAIRS = [
    ("SAESpec", "exclude_positions", "$defs.sae.exclude_positions"),
    ("SAESpec", "threads", "threads_per_job"),
    ("LanguageModelSpec", "dtype", "$defs.language_source.dtype"),
    ("LanguageModelSpec", "device", "device"),
    ("build_corpus", "source", "$defs.language_source.corpus.source"),
    ("build_corpus", "n_ctx", "$defs.language_source.corpus.n_ctx"),
    ("build_corpus", "n_tokens", "$defs.language_source.corpus.n_tokens"),
    ("build_corpus", "split", "$defs.language_source.corpus.split"),
    ("build_corpus", "text_column", "$defs.language_source.corpus.text_column"),
    ("extract_to_stores", "batch_size", "$defs.language_source.batch_size"),
    ("extract_to_stores", "dtype", "$defs.store.dtype"),
    ("extract_to_stores", "chunk_rows", "$defs.store.chunk_rows"),
    ("extract_modular_stores", "dtype", "$defs.store.dtype"),
    ("extract_modular_stores", "chunk_rows", "$defs.store.chunk_rows"),
    ("extract_modular_stores", "rel_threshold", "$defs.modular_source.key_rel_threshold"),
    ("write_synthetic_store", "dtype", "$defs.store.dtype"),
    ("write_synthetic_store", "chunk_rows", "$defs.store.chunk_rows"),
    ("CodeComparisonOptions", "n_null", "$defs.comparison.n_null"),
    ("CodeComparisonOptions", "min_freq", "$defs.comparison.min_freq"),
    ("CodeComparisonOptions", "corr_threshold", "$defs.comparison.corr_threshold"),
    ("CodeComparisonOptions", "max_rows", "$defs.comparison.max_rows"),
    ("compare_neuron_activations", "n_null", "$defs.comparison.n_null"),
    ("compare_neuron_activations", "max_rows", "$defs.comparison.max_rows"),
    ("ComparisonOptions", "baseline_draws", "baseline_draws"),
    ("ComparisonOptions", "memory_budget_mb", "memory_budget_mb"),
    ("ComparisonOptions", "top_m", "$defs.suite.top_m"),
    ("ComparisonOptions", "cosine", "$defs.suite.cosine"),
]
# Not paired on purpose: SAESpec.device ("cpu") takes a resolved device, while the config's
# device "auto" is resolved per job (saesim.workflow.gpu.resolve_device).


@pytest.mark.parametrize("cls,def_name,elsewhere", MIRRORS, ids=[m[0] for m in MIRRORS])
def test_dataclass_defaults_equal_the_schema(cls, def_name, elsewhere):
    ours, theirs = library_defaults(lib()[cls]), schema_defaults(def_name)
    shared = sorted(set(ours) & set(theirs))
    assert len(shared) >= 4, shared
    wrong = {k: (ours[k], theirs[k]) for k in shared if plain(ours[k]) != plain(theirs[k])}
    assert not wrong, f"{cls} default != schema $defs.{def_name} default: {wrong}"
    assert set(theirs) - set(ours) - {"kind"} <= elsewhere, f"schema defaults {cls} lacks: {set(theirs) - set(ours)}"


@pytest.mark.parametrize("obj,name,path", PAIRS, ids=[f"{o}.{n}" for o, n, _ in PAIRS])
def test_function_defaults_equal_the_schema(obj, name, path):
    assert plain(library_defaults(lib()[obj])[name]) == plain(schema_default(path))


def test_the_comparison_mirror_catches_a_disagreement(monkeypatch):
    """The check above can fail: a dataclass default changed away from the schema's."""
    from saesim.sources.modular import ModularConfig

    fields = {f.name: f for f in dataclasses.fields(ModularConfig)}
    monkeypatch.setattr(fields["train_frac"], "default", 0.3)
    with pytest.raises(AssertionError, match="train_frac"):
        test_dataclass_defaults_equal_the_schema("ModularConfig", "modular_source", {"key_rel_threshold"})


def _config(**experiments):
    return {"experiments": experiments}


SAE = {"seeds": [0, 1], "variants": [{"architecture": "topk", "width": 8, "k": [2]}]}
TOY_MODEL = {"num_features": 4, "hidden_dim": 8, "seed": 0}


def _walk_defaults(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "default":
                yield path
            yield from _walk_defaults(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_defaults(value, f"{path}[{i}]")


@pytest.mark.parametrize("def_name", ["toy_source", "synthetic_model", "firing_probability", "magnitude"])
def test_synthetic_model_defaults_are_the_library_s_own(def_name):
    """The toy source's model keys have no schema default: what is not given is
    SyntheticModelConfig's own default (one copy, in sae-lens)."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["$defs"][def_name]
    assert list(_walk_defaults(schema)) == []


@pytest.mark.parametrize("fp", [{"generator_name": "zipfian"}, {"generator_name": "zipfian", "exponent": 0.5},
                                {"generator_name": "linear"}, {"generator_name": "constant"}, None])
def test_expected_l0_uses_the_library_s_firing_defaults(fp):
    """saesim.sources.synthetic.expected_l0 (parse time, no sae-lens import) restates sae-lens's
    firing-probability defaults; known answer: the library's own generated probabilities."""
    pytest.importorskip("sae_lens")
    from saesim.sources.synthetic import expected_l0, model_config

    model = {"num_features": 40, "hidden_dim": 8, "seed": 0, **({"firing_probability": fp} if fp else {})}
    probs = model_config(model).firing_probability.generate(40, seed=0)
    assert expected_l0({"model": model}) == pytest.approx(float(probs.sum()), rel=1e-6)


def test_validated_config_carries_every_store_default():
    cfg = validate_config(
        _config(
            toy={"source": {"kind": "toy", "model": TOY_MODEL}, "sae": SAE},
            mod={"source": {"kind": "modular"}, "hooks": ["blocks.0.hook_resid_post"], "sae": SAE},
            lm={"source": {"kind": "smollm2"}, "hooks": ["blocks.1.hook_out"], "sae": SAE},
        ),
        SCHEMA_PATH,
    )
    exps = cfg["experiments"]
    store = {"dtype": schema_default("$defs.store.dtype"), "chunk_rows": schema_default("$defs.store.chunk_rows")}
    assert exps["toy"]["store"] == {**store, "n_rows": 200000}
    assert exps["mod"]["store"] == store  # no n_rows: every input once
    assert exps["lm"]["store"] == store
    assert exps["lm"]["source"]["corpus"]["n_tokens"] == 65536 and exps["lm"]["source"]["batch_size"] == 8
    assert exps["mod"]["source"]["train_frac"] == 0.5 and exps["mod"]["source"]["stop_after_grok"] == 100
    # given values stay
    given = validate_config(
        _config(toy={"source": {"kind": "toy", "model": TOY_MODEL}, "store": {"n_rows": 50000, "chunk_rows": 1024},
                     "sae": {**SAE, "training": {"eval_rows": 1000}}}),
        SCHEMA_PATH,
    )
    assert given["experiments"]["toy"]["store"] == {"n_rows": 50000, "chunk_rows": 1024, "dtype": "float32"}


def test_language_store_rows_are_refused_by_name():
    with pytest.raises(SaesimError, match=r"^config: experiments\.lm\.store\.n_rows: a smollm2 store holds every token of its corpus; set source\.corpus\.n_tokens instead$"):
        validate_config(
            _config(lm={"source": {"kind": "smollm2"}, "hooks": ["blocks.1.hook_out"], "store": {"n_rows": 4096}, "sae": SAE}),
            SCHEMA_PATH,
        )


def test_default_config_runs_with_the_values_it_ran_with():
    """Known answers: the validated default config.yaml (what the jobs get) for the values the
    defaults touch; the schema edits of this change leave them as they were."""
    cfg = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()), SCHEMA_PATH)
    exps = copy.deepcopy(cfg["experiments"])
    assert exps["toy"]["store"] == {"n_rows": 200000, "dtype": "float32", "chunk_rows": 8192}
    assert exps["modular"]["store"] == {"n_rows": 63845, "chunk_rows": 4096, "dtype": "float32"}
    assert exps["smollm2"]["store"] == {"chunk_rows": 4096, "dtype": "float32"}
    src = exps["modular"]["source"]
    assert (src["train_frac"], src["lr"], src["warmup_epochs"], src["epochs"], src["eval_every"], src["stop_after_grok"]) == (0.5, 0.005, 10, 3000, 10, 20)
    assert exps["toy"]["sae"]["exclude_positions"] == [0]
