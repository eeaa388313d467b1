"""compare_codes' settings as one CodeComparisonOptions: the object, keyword overrides and the
old keyword calls give the same result; unknown names are refused."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from saesim.similarity.universality import CodeComparisonOptions, compare_codes


@pytest.fixture(scope="module")
def codes():
    """B's latents are a subset of A's (plus noise), so pairs exist and the relational measures run."""
    rng = np.random.default_rng(0)
    ca = sp.random(2000, 40, density=0.05, format="csr", random_state=1)
    perm = rng.permutation(40)[:30]
    cb = (ca[:, perm] + sp.random(2000, 30, density=0.01, format="csr", random_state=2)).tocsr()
    dec_a = rng.standard_normal((40, 12))
    dec_b = dec_a[perm] + 0.05 * rng.standard_normal((30, 12))
    return ca, cb, dec_a, dec_b


def _run(codes, **kw):
    ca, cb, dec_a, dec_b = codes
    res = compare_codes(ca, cb, dec_a, dec_b, **kw)
    summary = dict(res.summary)
    summary.pop("seconds")  # wall-clock timings
    return summary, res.arrays


def _same(x, y):
    assert x[0] == y[0]
    assert x[1].keys() == y[1].keys()
    for k in x[1]:
        np.testing.assert_array_equal(x[1][k], y[1][k])


def test_options_object_equals_keywords_and_overrides_win(codes):
    opts = CodeComparisonOptions(n_null=7, seed=3, min_freq=1e-3, relational_on=("one_to_one",), metrics=("svcca", "cka"))
    by_object = _run(codes, options=opts)
    by_keywords = _run(codes, n_null=7, seed=3, min_freq=1e-3, relational_on=("one_to_one",), metrics=("svcca", "cka"))
    _same(by_object, by_keywords)
    rel = by_object[0]["relational"]["one_to_one"]
    assert set(rel) == {"svcca", "cka"} and rel["cka"]["n_null"] == 7
    assert by_object[0]["filters"]["dead_or_rare"]["min_freq"] == 1e-3
    # a keyword replaces one field of the object, the rest stays
    over = _run(codes, options=opts, n_null=4)
    assert over[0]["relational"]["one_to_one"]["cka"]["n_null"] == 4
    assert set(over[0]["relational"]["one_to_one"]) == {"svcca", "cka"}
    assert opts.n_null == 7  # the caller's object is not changed


def test_no_options_means_the_defaults(codes):
    _same(_run(codes), _run(codes, options=CodeComparisonOptions()))
    assert _run(codes)[0]["filters"]["below_threshold"]["threshold"] == CodeComparisonOptions.corr_threshold


def test_unknown_setting_and_wrong_options_type_are_refused(codes):
    ca, cb, _, _ = codes
    with pytest.raises(TypeError, match=r"compare_codes\(\) got an unexpected keyword argument 'n_nul'"):
        compare_codes(ca, cb, n_nul=5)
    with pytest.raises(TypeError, match="options must be a CodeComparisonOptions, got dict"):
        compare_codes(ca, cb, options={"n_null": 5})


def test_every_former_keyword_is_a_field():
    """The fifteen settings compare_codes took as keywords before the options object."""
    assert [f.name for f in dataclasses.fields(CodeComparisonOptions)] == [
        "min_freq", "corr_threshold", "n_top_tokens", "one_to_one", "max_edges_per_latent", "max_pairs_per_tile",
        "relational_on", "metrics", "n_null", "seed", "max_rows", "rsa_max_rows", "knn_k", "variance_kept",
        "n_components",
    ]
