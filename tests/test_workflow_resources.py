"""saesim.workflow.resources: the resource cost model, on known answers (no Snakemake)."""

from __future__ import annotations

import pytest

from saesim.workflow.config import Variant
from saesim.workflow import resources as cost
from saesim.workflow.resources import CPU_FLOPS, GPU_FLOPS, LIBS_MB, MIB, MIN_RUNTIME


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
