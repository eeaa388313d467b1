"""saesim.workflow.resources: the resource cost model and the rules' resource functions bound to
the plan (plan.cost), on known answers (no workflow run)."""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY
from snakemake.iocontainers import Wildcards

from saesim.workflow.config import Variant, validate_config
from saesim.workflow.planning import Plan
from saesim.workflow import resources as cost
from saesim.workflow.resources import CPU_FLOPS, GPU_FLOPS, LIBS_MB, MIB, MIN_RUNTIME

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def toy(hidden_dim=16, n_rows=6000, chunk_rows=1024, dtype="float32", training_samples=12000, eval_rows=1024,
        batch_size=256, num_features=8, orthogonalization=None):
    return {
        "source": {"kind": "toy", "model": {"num_features": num_features, "hidden_dim": hidden_dim,
                                            "orthogonalization": orthogonalization}},
        "store": {"n_rows": n_rows, "chunk_rows": chunk_rows, "dtype": dtype},
        "sae": {"training": {"training_samples": training_samples, "eval_rows": eval_rows, "batch_size": batch_size}},
    }


MODULAR = {
    "source": {"kind": "modular", "p": 113, "d_model": 128, "d_mlp": 512, "n_heads": 4, "d_head": 32, "n_layers": 1,
               "train_frac": 0.3, "eval_every": 100, "epochs": 1000},
    "store": {"chunk_rows": 4096, "dtype": "float32"},
}

LANGUAGE = {
    "source": {"kind": "smollm2", "batch_size": 8, "corpus": {"n_tokens": 250_000, "n_ctx": 128}},
    "store": {"chunk_rows": 8192, "dtype": "float32"},
    "downstream": {"n_contexts": 16},
}


def test_mem_adds_half_again_in_mib_rounded_up_and_multiplies_by_the_attempt():
    assert cost.mb(0) == 0 and cost.mb(1) == 1 and cost.mb(MIB) == 1 and cost.mb(MIB + 1) == 2
    assert cost.mem(400, 0) == 400
    assert cost.mem(400, MIB) == 402  # 1.5 MiB -> 2
    assert cost.mem(400, MIB, attempt=2) == 804
    assert cost.mem(400, MIB, attempt=3) == 1206


def test_minutes_floor_margin_threads_gpu_and_attempt():
    one_minute_of_one_thread = CPU_FLOPS * 60
    assert cost.minutes(0) == MIN_RUNTIME == 10
    assert cost.minutes(one_minute_of_one_thread) == 10 + 2  # margin 2
    assert cost.minutes(one_minute_of_one_thread, threads=2) == 10 + 1
    assert cost.minutes(4 * one_minute_of_one_thread, threads=2) == 10 + 4
    assert cost.minutes(4 * one_minute_of_one_thread, threads=0) == 10 + 8  # at least one thread
    assert cost.minutes(GPU_FLOPS * 60, threads=8, gpu=1) == 10 + 2  # the GPU rate, threads ignored
    assert cost.minutes(one_minute_of_one_thread, attempt=2) == 24
    assert cost.minutes(1.0) == 11  # any work rounds up to a minute


def test_store_shape_of_each_source_kind():
    assert cost.store_shape(toy(hidden_dim=16, n_rows=6000), "toy") == (6000, 16)
    assert cost.store_shape(MODULAR, "blocks.0.hook_resid_post") == (113**2, 128)  # no n_rows: every input once
    assert cost.store_shape(MODULAR, "blocks.0.mlp.hook_post") == (113**2, 512)
    assert cost.store_shape(MODULAR, "blocks.0.mlp.hook_pre") == (113**2, 512)
    with_rows = {**MODULAR, "store": {**MODULAR["store"], "n_rows": 5000}}
    assert cost.store_shape(with_rows, "blocks.0.hook_resid_post") == (5000, 128)
    assert cost.store_shape(LANGUAGE, "blocks.6.hook_out") == (250_000, 576)
    unknown = {**LANGUAGE, "source": {**LANGUAGE["source"], "kind": "hf"}}  # any model: estimated
    assert cost.store_shape(unknown, "blocks.6.hook_out") == (250_000, 2048)
    assert cost.language_model_size(LANGUAGE) == (576, 135e6, 30)


def test_train_sae_memory_known_answer_grows_with_width_and_attempt():
    exp = toy()
    # params 2*12*16 + 12 + 16 = 412; bytes 16*412 + 24*4096*12 + 16*256*16 + 8*1024*16*4 + 16*6000 = 1,872,064
    # 1.5x = 2,808,096 B = 2.68 MiB -> 3
    assert cost.train_sae_mem_mb(exp, "toy", 12, 1) == LIBS_MB + 3
    assert cost.train_sae_mem_mb(exp, "toy", 12, 2) == 2 * (LIBS_MB + 3)
    mems = [cost.train_sae_mem_mb(exp, "toy", w, 1) for w in (1024, 4096, 16384)]
    assert mems[0] < mems[1] < mems[2]
    # 16384 latents: 16*(2*16384*16 + 16384 + 16) + 24*4096*16384 + 65536 + 524288 + 96000 bytes
    n_bytes = 16 * (2 * 16384 * 16 + 16384 + 16) + 24 * 4096 * 16384 + 65536 + 524288 + 96000
    assert mems[2] == LIBS_MB + -(-int(1.5 * n_bytes) // MIB)
    # float16 stores halve the chunks in flight
    assert cost.train_sae_mem_mb(toy(dtype="float16", chunk_rows=2**20), "toy", 12, 1) < \
        cost.train_sae_mem_mb(toy(chunk_rows=2**20), "toy", 12, 1)


def test_train_sae_runtime_scales_with_samples_width_and_threads():
    # 12 * samples * width * d = 12 * 5e10 = 6e11 FLOPs: 2 * 6e11 / 2e10 / 60 = 1 minute over the floor
    exp = toy(hidden_dim=100, training_samples=5_000_000 - 1000, eval_rows=1000)
    assert cost.train_sae_runtime(exp, "toy", 100, 1, 0, 1) == 11
    assert cost.train_sae_runtime(exp, "toy", 1000, 1, 0, 1) == 20  # 10x the width: 10 minutes
    assert cost.train_sae_runtime(exp, "toy", 1000, 2, 0, 1) == 15  # two threads: half
    assert cost.train_sae_runtime(exp, "toy", 1000, 1, 0, 2) == 40  # second attempt: twice
    twice = toy(hidden_dim=100, training_samples=10_000_000 - 1000, eval_rows=1000)
    assert cost.train_sae_runtime(twice, "toy", 1000, 1, 0, 1) == 30  # twice the samples
    assert cost.train_sae_runtime(twice, "toy", 1000, 1, 1, 1) == 11  # on a GPU (100x a thread)


def test_experiment_training_job_is_the_largest_sae_and_the_sum_of_their_times():
    exp = toy(hidden_dim=100, training_samples=5_000_000 - 1000, eval_rows=1000)
    hw = [("toy", 100), ("toy", 1000), ("toy", 300)]
    assert cost.train_experiment_mem_mb(exp, hw, 1) == cost.train_sae_mem_mb(exp, "toy", 1000, 1)
    assert cost.train_experiment_runtime(exp, hw, 3, 1, 0, 1) == 3 * (11 + 20 + 13)


def test_compare_flops_and_pair_jobs():
    assert cost.compare_flops(10, 3) == 4 * 100 * 3 + 10 * 1000
    exp = toy(hidden_dim=16)
    # decoders and encoders, two SAEs, normalised copies: 32 * width * d bytes over torch + the budget
    assert cost.compare_mem_mb(exp, "toy", 2**14, 1000, 1) == 600 + 1000 + -(-int(1.5 * 32 * 2**14 * 16) // MIB)
    assert cost.compare_mem_mb(exp, "toy", 2**14, 1000, 2) == 2 * cost.compare_mem_mb(exp, "toy", 2**14, 1000, 1)
    assert cost.compare_runtime(exp, "toy", 12, 1) == 11
    # the baseline is baseline_draws comparisons of the same shape
    w, d = 3000, 16
    one = 2 * cost.compare_flops(w, d) / CPU_FLOPS / 60
    assert cost.decoder_baseline_runtime(toy(hidden_dim=d), "toy", w, 10, 1) == 10 + -(-int(10 * one * 1e6) // 10**6)


def test_sae_eval_loads_sae_lens_for_toy_ground_truth_only():
    assert cost.sae_eval_mem_mb(toy(), "toy", 12, 1) >= LIBS_MB
    assert cost.sae_eval_mem_mb(MODULAR, "blocks.0.hook_resid_post", 12, 1) < LIBS_MB


def test_toy_store_orthogonalisation_costs_memory_and_time():
    plain = toy(num_features=4096, hidden_dim=512, n_rows=100_000)
    ortho = toy(num_features=4096, hidden_dim=512, n_rows=100_000, orthogonalization={"num_steps": 200})
    assert cost.synthetic_sizes(plain) == (4096, 1024, 0)
    assert cost.synthetic_sizes(ortho) == (4096, 1024, 200)
    assert cost.synthetic_sizes(toy(num_features=2**22, chunk_rows=1024)) == (2**22, 2, 0)  # sample calls shrink
    assert cost.make_toy_store_mem_mb(ortho, 1) > cost.make_toy_store_mem_mb(plain, 1)
    assert cost.make_toy_store_runtime(ortho, 1) > cost.make_toy_store_runtime(plain, 1)


def test_null_store_grows_with_d_squared():
    small, big = toy(hidden_dim=256, n_rows=10**6), toy(hidden_dim=1024, n_rows=10**6)
    assert cost.make_null_store_runtime(small, "toy", 1) == 10 + -(-int(2 * (4.0 * 10**6 * 256**2 + 10.0 * 256**3)) // int(CPU_FLOPS * 60))
    assert cost.make_null_store_mem_mb(big, "toy", 1) > cost.make_null_store_mem_mb(small, "toy", 1)


def test_modular_model_language_model_and_corpus_jobs():
    # 1 layer: 4*128*4*32 + 2*128*512 = 196,608; + 113*128 embeddings
    assert cost.modular_params(MODULAR["source"]) == 196_608 + 113 * 128
    assert cost.train_modular_model_runtime(MODULAR, 1, 0, 1) < cost.train_modular_model_runtime(
        {**MODULAR, "source": {**MODULAR["source"], "epochs": 100_000}}, 1, 0, 1)
    assert cost.train_modular_model_mem_mb(MODULAR, 2) == 2 * cost.train_modular_model_mem_mb(MODULAR, 1)
    two_hooks = ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]
    assert cost.extract_modular_mem_mb(MODULAR, two_hooks, 1) > cost.extract_modular_mem_mb(MODULAR, two_hooks[:1], 1)
    assert cost.build_corpus_runtime(LANGUAGE, 1) == 2 * 10 + 3  # 250k tokens: 3 x 100k
    assert cost.build_corpus_runtime(LANGUAGE, 2) == 46
    assert cost.build_corpus_mem_mb(LANGUAGE, 1) == 2 * LIBS_MB + -(-int(1.5 * 64 * 250_000) // MIB)
    # 2 FLOPs per parameter per token: 2 * 135e6 * 250k = 6.75e13 -> 2 * 6.75e13 / 2e10 / 60 = 112.5 -> 113; + 5 to load
    assert cost.extract_runtime(LANGUAGE, ["blocks.6.hook_out"], 1, 0, 1) == 10 + 113 + 5
    assert cost.extract_runtime(LANGUAGE, ["blocks.6.hook_out"], 1, 0, 2) == 2 * (10 + 113 + 5)
    assert cost.extract_mem_mb(LANGUAGE, ["a", "b"], 1) > cost.extract_mem_mb(LANGUAGE, ["a"], 1)


def test_downstream_counts_one_pass_clean_one_per_hook_one_per_sae():
    # 16 contexts x 128 tokens x 2 x 135e6 FLOPs per pass = 5.53e11: 2 * 5.53e11 / 2e10 / 60 = 0.92 minutes per pass
    per_pass = 2 * 2.0 * 135e6 * 16 * 128 / CPU_FLOPS / 60
    for hooks, saes in ((1, 1), (2, 6), (2, 30)):
        assert cost.downstream_runtime(LANGUAGE, hooks, saes, 1, 0, 1) == 10 + -(-int((1 + hooks + saes) * per_pass * 1e6) // 10**6) + 5
    assert cost.downstream_mem_mb(LANGUAGE, [1152, 2304], 3, 1) > cost.downstream_mem_mb(LANGUAGE, [1152], 3, 1)


def test_typical_l0_and_activation_comparison_and_coactivation():
    topk = Variant("topk-w1024-k32", "topk", 1024, "k", 32.0, ())
    relu = Variant("standard-w1024-l1c1", "standard", 1024, "l1_coefficient", 1.0, ())
    narrow = Variant("standard-w64-l1c1", "standard", 64, "l1_coefficient", 1.0, ())
    assert cost.typical_l0(topk) == 32 and cost.typical_l0(relu) == 256 and cost.typical_l0(narrow) == 64
    sides = [(576, 1024, 32), (576, 2048, 64)]
    # co-firing: 50 ns per co-active pair: 1e6 rows x 32 x 64 pairs = 102.4 s, on one thread as FLOPs
    assert cost.compare_by_activations_runtime(10**6, sides, 1, 1) > cost.compare_by_activations_runtime(10**5, sides, 1, 1)
    assert cost.compare_by_activations_mem_mb(10**6, sides, 4096, 1) > cost.compare_by_activations_mem_mb(10**5, sides, 4096, 1)
    exp = {**toy(hidden_dim=16), "coactivation": {"max_rows": 1000}}
    # pairs: min(1024^2 / 2, 1000 * 32^2 / 2) = 512,000; 3 * 16 * 512,000 + 4 * 1024 * 1024 bytes
    assert cost.coactivation_mem_mb(exp, [topk], 1) == LIBS_MB + -(-int(1.5 * (3 * 16 * 512_000 + 4 * 1024 * 1024)) // MIB)
    assert cost.coactivation_runtime(exp, ["toy"], [1024, 1024], 2, 1) >= cost.coactivation_runtime(exp, ["toy"], [1024], 2, 1)


def test_convergence_reads_snapshots_and_trains_nothing():
    exp = toy(hidden_dim=100, training_samples=5_000_000 - 1000, eval_rows=1000)
    # no training in the estimate: far below training one seed, and growing with seeds and null seeds
    assert cost.convergence_runtime(exp, "toy", 2000, 5, 1, 1, 0, 1) < cost.train_sae_runtime(exp, "toy", 2000, 1, 0, 1)
    assert cost.convergence_runtime(exp, "toy", 2000, 3, 4, 1, 0, 1) > cost.convergence_runtime(exp, "toy", 2000, 3, 2, 1, 0, 1)
    assert cost.convergence_runtime(exp, "toy", 8000, 3, 2, 1, 0, 1, n_null_seeds=4) > cost.convergence_runtime(exp, "toy", 8000, 3, 2, 1, 0, 1)
    snapshots = (2 + 2) * 3 * 4 * 100 * 100 + 4 * 4 * 100 * 100
    assert cost.convergence_mem_mb(exp, "toy", 100, 3, 2, 1, n_null_seeds=2) == LIBS_MB + cost.mem(0, snapshots)


def test_imported_saes_and_suite_cells():
    # 100 latents x 10 dims: 3*4*100*10 + 3*4*4096*100 = 4,927,200 B; 1.5x = 7.05 MiB -> 8
    assert cost.import_sae_mem_mb((100, 10), False, 1) == 400 + 8
    assert cost.import_sae_mem_mb((100, 10), True, 1) == LIBS_MB + 8
    assert cost.import_sae_mem_mb((100, 10), True, 2) == 2 * (LIBS_MB + 8)
    assert cost.import_sae_runtime((100, 10), 0, 1) == MIN_RUNTIME  # no store: nothing encoded
    assert cost.suite_cell_mem_mb(100, 200, 10, False, 500, 1) == 600 + 500 + 1  # 2*2*4*300*10 B -> 1 MiB
    assert cost.suite_cell_mem_mb(100, 200, 10, True, 500, 1) == LIBS_MB + 500 + 1
    # the pair and baseline_draws pairs, at the wider member's width
    assert cost.suite_cell_runtime(100, 3000, 16, 9, 1) == cost.minutes(10 * cost.compare_flops(3000, 16))


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_table_jobs_scale_with_the_attempt(attempt):
    assert cost.table_mem_mb(attempt) == 600 * attempt
    assert cost.short_runtime(attempt) == 10 * attempt


def test_per_latent_job_holds_every_seed_of_the_widest_variant_and_sums_passes_and_pairs():
    exp = {**toy(eval_rows=1000), "sae": {"seeds": [0, 1, 2], "training": {"eval_rows": 1000}}, "null": {"seeds": [0, 1]}}
    shapes = [(12, 16), (100, 16)]
    # five SAEs (3 real + 2 null) of the widest variant, decoder and encoder, float32
    assert cost.per_latent_mem_mb(exp, shapes, 256, 1) == cost.mem(LIBS_MB + 256, 2 * 4 * 5 * 100 * 16)
    assert cost.per_latent_mem_mb(exp, shapes, 256, 2) == 2 * cost.per_latent_mem_mb(exp, shapes, 256, 1)
    flops = sum(5 * 4.0 * 1000 * w * d + (3 + 1) * cost.compare_flops(w, d) for w, d in shapes)
    assert cost.per_latent_runtime(exp, shapes, 1) == cost.minutes(flops)


# ---- the rules' resource functions (plan.cost), on the TINY and default configs -------------
# Known answers: the numbers every job of these configs asked for before the rules called
# plan.cost (the dry-run job dump of the workflow, attempts 1 and 2).


def plan_of(raw):
    return Plan(validate_config(copy.deepcopy(raw), SCHEMA))


def job(**wildcards):
    """A job's wildcards, as Snakemake passes them to a resource function."""
    return Wildcards(fromdict={k: str(v) for k, v in wildcards.items()})


def resources(plan, rule, wildcards, threads=1, attempts=(1, 2), exp=None):
    """[(mem_mb, runtime)] of one job of ``rule`` at each attempt."""
    mem_mb, runtime = plan.cost.mem_mb(rule, exp=exp), plan.cost.runtime(rule, exp=exp)
    return [(mem_mb(wildcards, attempt=a), runtime(wildcards, threads=threads, attempt=a)) for a in attempts]


@pytest.fixture(scope="module")
def tiny():
    return plan_of(TINY)


@pytest.fixture(scope="module")
def default():
    return plan_of(yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_resource_functions_take_the_arguments_snakemake_passes(tiny):
    assert list(inspect.signature(tiny.cost.mem_mb("make_toy_store")).parameters) == ["wildcards", "attempt"]
    assert list(inspect.signature(tiny.cost.runtime("make_toy_store")).parameters) == ["wildcards", "threads", "attempt"]
    with pytest.raises(ValueError, match=r"no mem_mb estimate for rule 'make_toy_stor'; rules: .*make_toy_store, "):
        tiny.cost.mem_mb("make_toy_stor")


def test_tiny_workflow_jobs(tiny):
    toy = dict(exp="toy", hook="toy")
    assert resources(tiny, "make_toy_store", job(exp="toy")) == [(1201, 11), (2402, 22)]
    assert resources(tiny, "make_null_store", job(**toy)) == [(401, 11), (802, 22)]
    # one variant, both seeds in one job (rule train_saes_toy; the null's train_null_saes_toy)
    variant = job(**toy, variant="standard-w12-l1c0.05")
    assert resources(tiny, "train_saes", variant, exp="toy") == [(1203, 22), (2406, 44)]
    assert resources(tiny, "train_null_saes", variant, exp="toy") == [(1203, 22), (2406, 44)]
    pair = job(**toy, variant="standard-w12-l1c0.05", a=0, b=1)
    assert resources(tiny, "compare_seed_pair", pair) == [(1625, 11), (3250, 22)]
    assert resources(tiny, "decoder_baseline", job(**toy, width=12)) == [(1625, 11), (3250, 22)]
    sae = job(**toy, variant="standard-w12-l1c0.05", seed=0)
    assert resources(tiny, "ground_truth_recovery", sae) == [(1201, 10), (2402, 20)]
    assert resources(tiny, "plot_latent_vs_truth", job(exp="toy")) == [(601, 10), (1202, 20)]
    assert resources(tiny, "coactivation", job(exp="toy")) == [(1201, 11), (2402, 22)]
    assert resources(tiny, "per_latent", job(), exp="toy") == [(2225, 11), (4450, 22)]
    assert resources(tiny, "feature_pages", job(), exp="toy") == [(2000, 10), (2000, 20)]  # memory fixed
    assert resources(tiny, "table", job(exp="toy"), attempts=(1, 2, 3)) == [(600, 10), (1200, 20), (1800, 30)]


def test_default_config_jobs_on_cpu_with_threads(default):
    assert default.gpu == 0
    # sae.train_jobs: experiment: every SAE of toy in one job, 3 seeds (the null: 2)
    assert resources(default, "train_saes", job(), exp="toy") == [(1252, 231), (2504, 462)]
    assert resources(default, "train_null_saes", job(), exp="toy") == [(1252, 154), (2504, 308)]
    assert resources(default, "train_saes", job(), threads=4, exp="toy") == [(1252, 231), (2504, 462)]
    # one job per variant: the widest variant needs more memory; 4 threads train faster
    smollm2 = dict(exp="smollm2", hook="blocks.6.hook_out")
    assert resources(default, "train_saes", job(**smollm2, variant="topk-w1152-k64"), exp="smollm2") == [(1508, 33), (3016, 66)]
    assert resources(default, "train_saes", job(**smollm2, variant="topk-w2304-k64"), threads=4, exp="smollm2") == [
        (1701, 33), (3402, 66)]
    # the null's rule of that variant trains null.seeds (the first two of three): two thirds of the time
    assert resources(default, "train_null_saes", job(**smollm2, variant="topk-w1152-k64"), exp="smollm2") == [(1508, 22), (3016, 44)]
    assert resources(default, "extract_activations", job(), exp="smollm2") == [(4761, 30), (9522, 60)]
    assert resources(default, "extract_activations", job(), threads=4, exp="smollm2") == [(4761, 19), (9522, 38)]
    assert resources(default, "build_corpus", job(exp="smollm2")) == [(2403, 21), (4806, 42)]
    assert resources(default, "downstream_loss", job(exp="smollm2")) == [(5397, 29), (10794, 58)]
    assert resources(default, "convergence", job(exp="smollm2")) == [(1311, 12), (2622, 24)]
    assert resources(default, "seed_modes", job(exp="toy")) == [(1252, 102), (2504, 204)]
    assert resources(default, "train_modular_model", job(exp="modular-s1")) == [(1887, 140), (3774, 280)]
    assert resources(default, "extract_modular_stores", job(), exp="modular") == [(1403, 11), (2806, 22)]
    assert resources(default, "extract_modular_stores", job(), exp="modular-s1") == [(1379, 11), (2758, 22)]
    assert resources(default, "per_latent", job(), exp="smollm2") == [(2300, 12), (4600, 24)]
    assert resources(default, "fourier_overlap", job(exp="modular-s1", hook="blocks.0.hook_mlp_out", variant="topk-w512-k16",
                                                     seed=0)) == [(603, 10), (1206, 20)]
    widths = job(cmp="smollm2-widths", hook_a="blocks.6.hook_out", hook_b="blocks.6.hook_out")
    assert resources(default, "compare_by_activations", widths, threads=4) == [(1537, 11), (3074, 22)]
    cell = job(suite="smollm2-widths", a="topk-w1152-k64", b="topk-w2304-k64")
    assert resources(default, "suite_cell", cell) == [(1670, 11), (3340, 22)]
    # causal equivalence across the modular models: 12769 inputs x two 512-latent SAEs, short
    assert resources(default, "causal_across_models", job(cmp="modular-model-seeds")) == [(1478, 10), (2956, 20)]


def test_a_gpu_shortens_the_torch_jobs_only(default):
    cfg = copy.deepcopy(default.config)
    cfg["device"] = "cuda"
    cuda = Plan(cfg)
    assert cuda.gpu == 1
    assert resources(cuda, "extract_activations", job(), exp="smollm2") == [(4761, 16), (9522, 32)]
    assert resources(cuda, "downstream_loss", job(exp="smollm2")) == [(5397, 16), (10794, 32)]
    assert resources(cuda, "train_modular_model", job(exp="modular-s1")) == [(1887, 12), (3774, 24)]
    assert resources(cuda, "convergence", job(exp="smollm2")) == [(1311, 12), (2622, 24)]


def test_imported_saes_and_their_suite_cells(tmp_path):
    for name, cfg in {"a": {"d_sae": 24, "d_in": 16}, "b": {"d_sae": 48, "d_in": 16}, "c": {"d_in": 16}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "cfg.json").write_text(json.dumps(cfg))
        (tmp_path / name / "sae_weights.safetensors").write_text("")
    raw = copy.deepcopy(TINY)
    saes = [{"path": str(tmp_path / n), "label": n} for n in "abc"]
    raw["experiments"]["imported"] = {"source": {"kind": "saes", "saes": saes, "store": "results/toy/stores/toy.h5",
                                                 "eval_rows": 1024}}
    raw["experiments"]["nostore"] = {"source": {"kind": "saes", "saes": saes[:2]}}
    raw["suites"] = {"imp": {"experiment": "imported", "axis": "width"}}
    plan = plan_of(raw)
    # sae-lens to evaluate on the store, or numpy alone; c's cfg.json has no d_sae: the assumed shape
    assert resources(plan, "import_sae", job(exp="imported", label="a")) == [(1202, 11), (2404, 22)]
    assert resources(plan, "import_sae", job(exp="nostore", label="a")) == [(402, 10), (804, 20)]
    assert resources(plan, "import_sae", job(exp="imported", label="c")) == [(8400, 12), (16800, 24)]
    assert resources(plan, "suite_cell", job(suite="imp", a="a", b="b")) == [(1625, 11), (3250, 22)]
    assert resources(plan, "suite_cell", job(suite="imp", a="a", b="c")) == [(1649, 14086), (3298, 28172)]
