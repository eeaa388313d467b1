"""saesim.workflow.layout: paths built from identities, their inverse, identities written into artifacts
and tables that read them instead of the path."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.numpy import save_file

from saesim.workflow import layout
from saesim.workflow.layout import ArtifactId

ROOT = Path(__file__).resolve().parents[1]

#: a value for every non-identity field of the templates (hooks with dots, as language models have)
EXTRA = {"width": 512, "name": "stability_vs_l0", "ext": "pdf", "label": "res-6-w16k", "cmp": "gpt-vs-smol",
         "hook_a": "blocks.5.hook_resid_post", "hook_b": "blocks.12.hook_out", "suite": "widths",
         "member_a": "w512", "member_b": "w1024"}


def _cases():
    """(kind, identity or None, extra fields) for every kind and every role it has."""
    for kind in layout.TEMPLATES:
        names = set(layout.fields(kind))
        extra = {k: v for k, v in EXTRA.items() if k in names}
        if "exp" not in names:
            yield kind, None, extra
            continue
        n_seeds = 1 if "seed" in names else 2 if "a" in names else 0
        for role in ("real", "null") if "null" in names else ("real",):
            ident = ArtifactId(
                "toy-2",
                "blocks.5.hook_resid_post" if "hook" in names else None,
                "topk-w512-k16" if "variant" in names else None,
                (3, 11)[:n_seeds],
                role,
            )
            yield kind, ident, extra


@pytest.mark.parametrize("kind,ident,extra", list(_cases()), ids=lambda x: x if isinstance(x, str) else None)
def test_every_kind_round_trips(kind, ident, extra):
    p = layout.path(kind, ident, **extra)
    assert p.startswith("results/")
    assert layout.parse(kind, p) == (ident, extra)
    # under another folder, and with Windows separators: the same
    assert layout.parse(kind, "/data/project/" + p) == (ident, extra)
    assert layout.parse(kind, ("C:/x/" + p).replace("/", "\\")) == (ident, extra)


def test_paths_are_the_workflow_layout():
    """Known answers: the layout every earlier run wrote (results folders must not move)."""
    sae = ArtifactId("toy", "toy", "topk-w8-k3", (2,))
    null_pair = ArtifactId("toy", "toy", "topk-w8-k3", (0, 1), "null")
    assert layout.path("store", ArtifactId("toy", "toy")) == "results/toy/stores/toy.h5"
    assert layout.path("store", ArtifactId("toy", "toy", role="null")) == "results/toy/null/stores/toy.h5"
    assert layout.path("sae", sae) == "results/toy/saes/toy/topk-w8-k3/seed2"
    assert layout.path("pair", null_pair) == "results/toy/null/pairs/toy/topk-w8-k3/seed0-seed1.json"
    assert layout.path("ground_truth", sae) == "results/toy/ground_truth/toy/topk-w8-k3/seed2.json"
    assert layout.path("trained_cache", ArtifactId("toy", "toy", "topk-w8-k3", (2,), "null")) == "results/.trained/toy/null/toy/topk-w8-k3/seed2"
    assert layout.path("baseline", ArtifactId("toy", "toy"), width=8) == "results/toy/baselines/toy/w8.json"
    assert layout.path("figure", ArtifactId("toy"), name="seed_heatmap", ext="png") == "results/figures/toy_seed_heatmap.png"
    assert layout.path("summary", ext="html") == "results/summary.html"
    assert layout.sae_key(sae) == "toy/topk-w8-k3/seed2"


def test_patterns_keep_wildcards():
    assert layout.pattern("pair") == "results/{exp}/pairs/{hook}/{variant}/seed{a}-seed{b}.json"
    assert layout.pattern("sae", "null", seed="{a}") == "results/{exp}/null/saes/{hook}/{variant}/seed{a}"
    assert layout.pattern("table", name="stability.csv") == "results/{exp}/tables/stability.csv"
    assert layout.pattern("store", hook="toy") == "results/{exp}/stores/toy.h5"
    # path() with wildcard strings in the identity (how the rules build their outputs) agrees
    assert layout.path("sae", ArtifactId("{exp}", "{hook}", "{variant}", ("{a}",), "null")) == layout.pattern("sae", "null", seed="{a}")


def test_wrong_identities_are_refused():
    with pytest.raises(ValueError, match="needs 2 seed"):
        layout.path("pair", ArtifactId("toy", "toy", "v", (0,)))
    with pytest.raises(ValueError, match="trained null has no such artifact"):
        layout.path("baseline", ArtifactId("toy", "toy", role="null"), width=8)
    with pytest.raises(ValueError, match="trained null has no such artifact"):
        layout.pattern("figure", "null")
    with pytest.raises(ValueError, match="path needs width"):
        layout.path("baseline", ArtifactId("toy", "toy"))
    with pytest.raises(ValueError, match="unknown artifact kind 'pairs'"):
        layout.path("pairs", ArtifactId("toy"))
    with pytest.raises(ValueError, match="role 'fake'"):
        ArtifactId("toy", role="fake")
    with pytest.raises(ValueError, match="not a saesim pair path"):
        layout.parse("pair", "results/toy/pairs/toy/v/seed0.json")
    with pytest.raises(ValueError, match="not a saesim sae path"):
        layout.parse("sae", "elsewhere/toy/saes/toy/v/seed0")  # no results folder


def test_identity_dict_and_wildcards():
    from snakemake.iocontainers import Wildcards

    w = Wildcards(fromdict={"exp": "toy", "hook": "toy", "variant": "relu-w8-l1", "a": "0", "b": "2"})
    ident = ArtifactId.from_wildcards(w, "null")
    assert ident == ArtifactId("toy", "toy", "relu-w8-l1", (0, 2), "null")
    d = ident.to_dict()
    assert d == {"experiment": "toy", "hook": "toy", "variant": "relu-w8-l1", "seeds": [0, 2], "role": "null"}
    assert ArtifactId.from_dict(json.loads(json.dumps(d))) == ident
    one = ArtifactId.from_wildcards(Wildcards(fromdict={"exp": "m", "hook": "h", "variant": "v", "seed": "4"}))
    assert one.seeds == (4,) and one.role == "real"
    assert layout.sae_key_identity("blocks.5.hook_out/topk-w8-k3/seed4", "m") == ArtifactId("m", "blocks.5.hook_out", "topk-w8-k3", (4,))


def _sae(folder, W_dec):
    folder.mkdir(parents=True, exist_ok=True)
    W_dec = np.ascontiguousarray(W_dec, dtype=np.float32)
    save_file({"W_dec": W_dec, "W_enc": np.ascontiguousarray(W_dec.T), "b_dec": np.zeros(W_dec.shape[1], np.float32)},
              str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": W_dec.shape[1], "d_sae": W_dec.shape[0]}))
    return str(folder)


def test_seed_pair_script_writes_its_identity(tmp_path):
    """The rule script writes the identity its rule passes (saesim.workflow.planning.job_identity: from the wildcards)."""
    from snakemake.iocontainers import Wildcards

    rng = np.random.default_rng(0)
    a = _sae(tmp_path / "a", rng.standard_normal((16, 8)))
    b = _sae(tmp_path / "b", rng.standard_normal((16, 8)))
    wildcards = Wildcards(fromdict={"exp": "toy", "hook": "toy", "variant": "topk-w16-k2", "a": "1", "b": "3"})
    out = tmp_path / "out.json"
    smk = SimpleNamespace(
        input=SimpleNamespace(a=a, b=b), output=[str(out)], log=[str(tmp_path / "job.log")], wildcards=wildcards,
        params=SimpleNamespace(memory_budget_mb=64, identity=ArtifactId.from_wildcards(wildcards, "null").to_dict()),
        rule="compare_null_seed_pair", resources={}, scriptdir=str(ROOT / "scripts"),
    )
    runpy.run_path(str(ROOT / "scripts" / "compare_seed_pair.py"), init_globals={"snakemake": smk})
    r = json.loads(out.read_text())
    assert r["identity"] == {"experiment": "toy", "hook": "toy", "variant": "topk-w16-k2", "seeds": [1, 3], "role": "null"}
    assert 0 < r["mmcs"] < 1 and r["sae_a"] == a  # the comparison itself is still there


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def test_tables_read_identities_not_paths(tmp_path):
    """Artifacts moved to paths that say nothing (or something else) land in the rows their identity names."""
    from saesim.report.tables import downstream_rows, fourier_table, load_baselines, pair_table, sae_table

    odd = tmp_path / "moved"
    metrics = {"architecture": "topk", "width": 8, "sparsity_key": "k", "sparsity": 3, "l0": 3.0,
               "explained_variance": 0.9, "mse": 0.1, "dead_fraction": 0.0, "training_seconds": 1.0}
    ident = ArtifactId("toy", "toy", "topk-w8-k3", (5,), "null")
    sae = odd / "sae-x"
    _write(sae / "metrics.json", {**metrics, "identity": ident.to_dict()})
    gt = {"gt_mean_max_cos": 0.5, "gt_frac_recovered": 0.25, "baseline": {"gt_mean_max_cos": 0.1, "gt_frac_recovered": 0.0}}
    gt_file = _write(odd / "gt.json", {**gt, "identity": ident.to_dict()})
    saes = sae_table([str(sae)], [gt_file])
    assert saes[["hook", "variant", "seed", "null"]].to_dict("records") == [{"hook": "toy", "variant": "topk-w8-k3", "seed": 5, "null": True}]
    assert saes["gt_mean_max_cos"].tolist() == [0.5]

    pair = {"mmcs": 0.8, "hungarian_mean_cos": 0.7, "frac_matched_above": {"0.7": 0.4}, "mmcs_a_to_b": 0.8, "mmcs_b_to_a": 0.8}
    # a path that says real seeds 0-1: the identity (null seeds 4 and 5) wins
    lying = tmp_path / "results/toy/pairs/toy/topk-w8-k3/seed0-seed1.json"
    pairs = pair_table([_write(lying, {**pair, "identity": ArtifactId("toy", "toy", "topk-w8-k3", (4, 5), "null").to_dict()}),
                        _write(odd / "p2.json", {**pair, "identity": ArtifactId("toy", "toy", "topk-w8-k3", (0, 1)).to_dict()})], saes)
    assert pairs[["seed_a", "seed_b", "null"]].to_dict("records") == [{"seed_a": 0, "seed_b": 1, "null": False}, {"seed_a": 4, "seed_b": 5, "null": True}]

    base = {"mmcs": 0.3, "hungarian_mean_cos": 0.2, "frac_matched_above": {"0.7": 0.0}, "n_a": 8, "n_b": 8}
    assert list(load_baselines([_write(odd / "b.json", {**base, "identity": ArtifactId("toy", "blocks.3").to_dict()})])) == [("blocks.3", 8)]

    space = {"dim": 4, "mean_overlap": 0.6, "frac_above_0.5": 1.0, "random_baseline": 0.25}
    f = {"key_frequencies": [3], "activation_subspace": space, "embedding_subspace": space, "identity": ident.to_dict()}
    assert fourier_table([_write(odd / "f.json", f)])[["hook", "variant", "seed", "null"]].to_dict("records") == [
        {"hook": "toy", "variant": "topk-w8-k3", "seed": 5, "null": True}]

    losses = {c: 0.5 for c in ("ce_loss_recovered", "kl_div", "ce_loss_delta", "ce_clean", "ce_zero")}
    entry = {**losses, "identity": ArtifactId("lm", "blocks.2.hook_out", "topk-w8-k3", (7,)).to_dict()}
    rows = downstream_rows([_write(odd / "d.json", {"saes": {"some/other/seed0": entry}})])
    assert rows[["hook", "variant", "seed"]].to_dict("records") == [{"hook": "blocks.2.hook_out", "variant": "topk-w8-k3", "seed": 7}]


def test_tables_fall_back_to_the_path_for_older_artifacts(tmp_path):
    from saesim.report.tables import pair_table, sae_table

    sae = tmp_path / "results/toy/null/saes/toy/topk-w8-k3/seed2"
    _write(sae / "metrics.json", {"architecture": "topk", "width": 8, "sparsity_key": "k", "sparsity": 3, "l0": 3.0,
                                  "explained_variance": 0.9, "mse": 0.1, "dead_fraction": 0.0, "training_seconds": 1.0})
    saes = sae_table([str(sae)])
    assert saes[["seed", "null"]].to_dict("records") == [{"seed": 2, "null": True}]
    pair = {"mmcs": 0.8, "hungarian_mean_cos": 0.7, "frac_matched_above": {"0.7": 0.4}, "mmcs_a_to_b": 0.8, "mmcs_b_to_a": 0.8}
    pairs = pair_table([_write(tmp_path / "results/toy/null/pairs/toy/topk-w8-k3/seed2-seed6.json", pair)], saes)
    assert pairs[["seed_a", "seed_b", "null"]].to_dict("records") == [{"seed_a": 2, "seed_b": 6, "null": True}]
    with pytest.raises(ValueError, match="not a saesim pair path"):
        pair_table([_write(tmp_path / "moved/p.json", pair)], saes)  # neither identity nor layout path


def test_natural_key_orders_numbers_by_value():
    names = ["layers.10", "layers.2", "blocks.15.hook_resid_post", "blocks.6.hook_resid_post", "layers.2b"]
    assert sorted(names, key=layout.natural_key) == [
        "blocks.6.hook_resid_post", "blocks.15.hook_resid_post", "layers.2", "layers.2b", "layers.10"]
