"""ComparisonOptions: the one object that carries a comparison's options (saesim.similarity.options).

Its defaults against the config schema are held in tests/test_defaults.py (PAIRS); here: the
CLI's flags default to it, a bad value or an unknown key is one error naming the key, and the
object is what the comparison functions use.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from saesim.cli import build_parser, comparison_options
from saesim.similarity.contract import comparison_options as recorded_options
from saesim.errors import SaesimError
from saesim.similarity import ComparisonOptions, InvalidOption, compare_decoders, random_decoder_baseline


def test_cli_flags_default_to_the_options_defaults():
    args = build_parser().parse_args(["compare", "A", "B"])
    assert comparison_options(args) == ComparisonOptions()


@pytest.mark.parametrize("key,value,problem", [
    ("cosine", "sign", "must be one of abs, signed, got 'sign'"),
    ("thresholds", (0.5, 1.5), r"must be \|cos\| values in \[0, 1\], got 1.5"),
    ("shared_threshold", -0.1, r"must be \|cos\| values in \[0, 1\], got -0.1"),
    ("memory_budget_mb", 0, "must be positive, got 0"),
    ("top_m", 0, "must be >= 1, got 0"),
    ("baseline_draws", -1, "must be >= 0, got -1"),
    ("seed", -2, "must be >= 0, got -2"),
    ("baseline_draw_size", 0, "must be >= 1 or None, got 0"),
])
def test_a_bad_value_is_one_error_naming_its_key(key, value, problem):
    with pytest.raises(InvalidOption, match=f"^{key}: {problem}$") as e:
        ComparisonOptions(**{key: value})
    assert e.value.key == key and isinstance(e.value, SaesimError)


def test_the_cli_names_the_flag():
    args = build_parser().parse_args(["compare", "A", "B", "--top-m", "0"])
    with pytest.raises(SaesimError, match="^--top-m must be >= 1, got 0$"):
        comparison_options(args)


def test_an_unknown_key_is_one_error_naming_it():
    a = np.eye(4, dtype=np.float32)
    with pytest.raises(TypeError, match="compare_decoders\\(\\) got an unexpected keyword argument 'top_k'"):
        compare_decoders(a, a, top_k=4)
    with pytest.raises(TypeError, match="'draws'"):  # the field is baseline_draws
        random_decoder_baseline(4, 4, 4, draws=2)
    with pytest.raises(TypeError, match="options must be a ComparisonOptions, got dict"):
        compare_decoders(a, a, options={"top_m": 4})


def test_frozen_and_normalised():
    o = ComparisonOptions(thresholds=[0.7, 0.9])
    assert o.thresholds == (0.7, 0.9) and hash(o) == hash(ComparisonOptions(thresholds=(0.7, 0.9)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.top_m = 4


def test_keywords_and_the_object_give_the_same_comparison():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 8)).astype(np.float32), rng.standard_normal((40, 8)).astype(np.float32)
    o = ComparisonOptions(thresholds=(0.3, 0.6), memory_budget_mb=0.005, top_m=4, baseline_draws=2, seed=5)
    by_object = compare_decoders(a, b, options=o)
    assert by_object == compare_decoders(a, b, thresholds=(0.3, 0.6), memory_budget_mb=0.005, top_m=4,
                                         baseline_draws=2, seed=5)
    assert by_object["top_m"] == 4 and by_object["thresholds"] == ["0.3", "0.6"]
    assert by_object["baseline"]["draws"] == 2 and by_object["baseline"]["seed"] == 5
    # an override replaces the one field and keeps the rest of the object
    assert compare_decoders(a, b, options=o, seed=6)["baseline"]["seed"] == 6
    with pytest.raises(SaesimError, match="cosine='signed'"):
        compare_decoders(a, b, cosine="signed")  # |cos| only; saesim.similarity.suites.compare_pair scores signed


def test_provenance_records_every_option():
    o = ComparisonOptions(cosine="signed", thresholds=(0.7,), top_m=8, baseline_draws=2)
    assert recorded_options(o, encoders=False, with_baseline=True) == {
        "cosine": "signed", "thresholds": [0.7], "shared_threshold": 0.7, "memory_budget_mb": 1024.0,
        "top_m": 8, "device": "cpu", "encoders": False, "baseline_draws": 2,
    }
    assert recorded_options(o, encoders=True, with_baseline=False)["baseline_draws"] == 0
