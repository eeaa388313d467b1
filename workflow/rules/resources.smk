# Resources of every job: threads, memory, run time and GPUs.
#
# Convention for all rule files, present and future (e.g. models.smk, universality.smk).
#
#   * Each rule sets threads (1, or config["threads_per_job"] where it runs torch with
#     that many threads) and, in its resources block, mem_mb=<fn> and runtime=<fn> with
#     functions from this file named <rule>_mem_mb / <rule>_runtime (or shared ones:
#     table_mem_mb, short_runtime).
#     Rule files hold no sizes: sizes follow the job (SAE width, store rows, d) here.
#     On SLURM, threads become --cpus-per-task, mem_mb --mem, runtime (minutes) -t.
#   * A rule whose script runs torch on the configured device (SAE training, language-model
#     extraction, the modular model, later large comparisons) adds `gpu=GPU` (common.smk:
#     1 when config `device` resolves to CUDA, else 0). CPU-only rules have no gpu key.
#     gpu=0 requests nothing; gpu=1 becomes `--gpus=1` on SLURM, counts against
#     `--resources gpu=N` on a workstation, and saesim.rulekit.run() pins the job to a
#     free device (saesim.gpu) unless SLURM already chose one (CUDA_VISIBLE_DEVICES).
#     The submitting host decides: a login node without a GPU resolves device=auto to
#     CPU, so a GPU cluster is run with --config device=cuda.
#   * Functions take (wildcards, attempt): memory and run time grow with the attempt, so a
#     job killed for memory or time (the SLURM profile retries) asks for more next time.
#     Per-experiment rules (declared in a loop) call a factory: mem_mb=extract_mem_mb(exp).
#   * Everything here is an estimate with a safety margin; a profile or the command line
#     overrides any rule: set-resources: {train_saes_smollm2: {mem_mb: 64000, runtime: 720}} or
#     --set-resources train_saes_smollm2:runtime=720 (per-experiment rules: train_saes_<exp>, extract_activations_<exp>).

import math
from types import SimpleNamespace

MIB = 2**20
# resident memory of a job before its data, about twice what was measured (peak RSS of a
# toy job: h5py/numpy 64 MB, pandas/matplotlib 140 MB, torch 270 MB, sae-lens 550 MB):
# Python + numpy/h5py/pandas/matplotlib ...
BASE_MB = 400
# ... + torch ...
TORCH_MB = 600
# ... + sae-lens / transformer-lens / transformers
LIBS_MB = 1200
# sustained float32 FLOP/s of one CPU thread and of one GPU on this workflow's matmuls
CPU_FLOPS = 2e10
GPU_FLOPS = 2e12
# run-time margin over the estimate, and the floor (start-up, imports, queueing slack)
RUNTIME_MARGIN = 2.0
MIN_RUNTIME = 10
# d_model and parameter count of language models whose size the config does not say
KNOWN_MODELS = {"smollm2": (576, 135e6, 30)}
UNKNOWN_MODEL = (2048, 1.5e9, 28)


def _mb(n_bytes):
    return int(math.ceil(n_bytes / MIB))


def _mem(base_mb, n_bytes, attempt=1):
    return (base_mb + _mb(1.5 * n_bytes)) * attempt


def _minutes(flops, threads=1, gpu=0, attempt=1):
    rate = GPU_FLOPS if gpu else CPU_FLOPS * max(1, threads)
    return (MIN_RUNTIME + int(math.ceil(RUNTIME_MARGIN * flops / rate / 60))) * attempt


def _dtype_bytes(exp):
    return 2 if EXPERIMENTS[exp]["store"]["dtype"] == "float16" else 4


def language_model_size(exp):
    """(d_model, parameters, layers) of an experiment's language model (estimates for unknown ones)."""
    src = EXPERIMENTS[exp]["source"]
    return KNOWN_MODELS.get(src["kind"], UNKNOWN_MODEL)


def store_shape(exp, hook):
    """(rows, d) of one activation store, from the validated config (defaults from the schema)."""
    e = EXPERIMENTS[exp]
    src, store = e["source"], e["store"]
    kind = src["kind"]
    if kind == "toy":
        return store["n_rows"], src["model"]["hidden_dim"]
    if kind == "modular":
        d = src["d_mlp"] if ("mlp.hook_post" in hook or "mlp.hook_pre" in hook) else src["d_model"]
        # without n_rows, every one of the p * p inputs once (saesim.extraction.modular_row_order)
        return store.get("n_rows") or src["p"] ** 2, d
    return src["corpus"]["n_tokens"], language_model_size(exp)[0]


def _store_chunk(exp):
    return EXPERIMENTS[exp]["store"]["chunk_rows"]


def _width(wildcards):
    if hasattr(wildcards, "variant"):
        return variants(wildcards.exp)[wildcards.variant].width
    return int(wildcards.width)


# ---- shared -------------------------------------------------------------------


def table_mem_mb(wildcards, attempt):
    """Tables and figures: pandas and matplotlib on small CSVs."""
    return (BASE_MB + 200) * attempt


def short_runtime(wildcards, attempt):
    return MIN_RUNTIME * attempt


# ---- stores.smk ---------------------------------------------------------------


def _synthetic_sizes(exp):
    """(num_features, rows per sample call, orthogonalisation steps) of a toy (sae_lens.synthetic) source."""
    model = EXPERIMENTS[exp]["source"]["model"]
    n = model["num_features"]
    ortho = model.get("orthogonalization") or {}
    steps = ortho.get("num_steps", 200) if model.get("orthogonalization") is not None else 0
    return n, max(1, min(_store_chunk(exp), 2**23 // n)), steps


def make_toy_store_mem_mb(wildcards, attempt):
    """sae-lens + dense feature activations of one sample call (a few copies) + the dictionary
    + one orthogonalisation chunk [1024, n] and its gradient."""
    rows, d = store_shape(wildcards.exp, "toy")
    n, sample, steps = _synthetic_sizes(wildcards.exp)
    n_bytes = 4 * 4 * sample * (n + d) + 4 * 4 * n * d + (4 * 4 * min(1024, n) * n if steps else 0)
    return _mem(LIBS_MB, n_bytes, attempt)


def make_toy_store_runtime(wildcards, attempt):
    rows, d = store_shape(wildcards.exp, "toy")
    n, _, steps = _synthetic_sizes(wildcards.exp)
    return _minutes(2.0 * rows * n * (d + 16) + 6.0 * steps * n * n * d, attempt=attempt)


def make_null_store_mem_mb(wildcards, attempt):
    """A chunk of the source and of the draws (float64), the covariance and its factor, row masks."""
    rows, d = store_shape(wildcards.exp, wildcards.hook)
    chunk = _store_chunk(wildcards.exp)
    return _mem(BASE_MB, 4 * 8 * chunk * d + 6 * 8 * d * d + 16 * rows, attempt)


def make_null_store_runtime(wildcards, attempt):
    """Row norms, the covariance (2 rows d^2) and the draws (2 rows d^2)."""
    rows, d = store_shape(wildcards.exp, wildcards.hook)
    return _minutes(4.0 * rows * d * d + 10.0 * d**3, attempt=attempt)


# ---- saes.smk -----------------------------------------------------------------


def train_sae_mem_mb(wildcards, attempt):
    """Weights, gradients and two Adam moments; a batch's latents; streamed chunks; masks."""
    exp = wildcards.exp
    training = EXPERIMENTS[exp]["sae"]["training"]
    width = _width(wildcards)
    rows, d = store_shape(exp, wildcards.hook)
    params = 2 * width * d + width + d
    n_bytes = (
        4 * 4 * params  # weights, gradients, Adam m and v
        + 6 * 4 * max(training["batch_size"], 4096) * width  # latents (training batch, eval chunk)
        + 4 * 4 * training["batch_size"] * d
        + 8 * _store_chunk(exp) * d * _dtype_bytes(exp)  # shuffled chunks in flight
        + 16 * rows  # row masks, indices, positions
    )
    return _mem(LIBS_MB, n_bytes, attempt)


def train_saes_runtime(wildcards, threads, attempt):
    """Every seed of a variant, one after the other."""
    return len(seeds(wildcards.exp)) * train_sae_runtime(wildcards, threads, attempt)


def _variant_wildcards(exp):
    return [SimpleNamespace(exp=exp, hook=h, variant=v) for h, v in hook_variants(exp)]


def train_experiment_mem_mb(exp):
    """Resource function of a job that trains every SAE of an experiment (sae.train_jobs:
    experiment): the largest one, as they train one after the other."""
    return lambda wildcards, attempt: max(train_sae_mem_mb(w, attempt) for w in _variant_wildcards(exp))


def train_experiment_runtime(exp, null):
    """Every hook, variant and seed of an experiment, one after the other."""
    n_seeds = len(sae_seeds(exp, null))
    return lambda wildcards, threads, attempt: n_seeds * sum(
        train_sae_runtime(w, threads, attempt) for w in _variant_wildcards(exp)
    )


def train_sae_runtime(wildcards, threads, attempt):
    """12 FLOPs per weight per sample (encode, decode, backward), plus evaluation."""
    training = EXPERIMENTS[wildcards.exp]["sae"]["training"]
    width = _width(wildcards)
    _, d = store_shape(wildcards.exp, wildcards.hook)
    samples = training["training_samples"] + training["eval_rows"]
    return _minutes(12.0 * samples * width * d, threads, GPU, attempt)


# ---- similarity.smk -----------------------------------------------------------


def _compare_flops(width, d):
    # |cos| tiles of decoders and of encoders in both directions, plus the assignment
    return 4.0 * width * width * d + 10.0 * width**3


def compare_mem_mb(wildcards, attempt):
    """Two SAEs' decoders and encoders (and normalised copies) plus the chunked matrices' budget."""
    width = _width(wildcards)
    _, d = store_shape(wildcards.exp, wildcards.hook)
    n_bytes = 2 * 2 * 2 * 4 * width * d
    return _mem(TORCH_MB + config["memory_budget_mb"], n_bytes, attempt)


def compare_runtime(wildcards, attempt):
    width = _width(wildcards)
    _, d = store_shape(wildcards.exp, wildcards.hook)
    return _minutes(_compare_flops(width, d), attempt=attempt)


def decoder_baseline_runtime(wildcards, attempt):
    width = _width(wildcards)
    _, d = store_shape(wildcards.exp, wildcards.hook)
    return _minutes(config["baseline_draws"] * _compare_flops(width, d), attempt=attempt)


def sae_eval_mem_mb(wildcards, attempt):
    """One SAE against small ground truth (toy features, Fourier basis); sae-lens for the toy's
    library metrics: Hungarian cost matrix [width, n_features] in float64, a few copies."""
    width = _width(wildcards)
    _, d = store_shape(wildcards.exp, wildcards.hook)
    n = _synthetic_sizes(wildcards.exp)[0] if EXPERIMENTS[wildcards.exp]["source"]["kind"] == "toy" else 0
    base = LIBS_MB if n else TORCH_MB
    return _mem(base, 4 * 4 * width * d + 8 * width * max(d, 256) + 3 * 8 * width * n, attempt)


# ---- figures.smk --------------------------------------------------------------


def plot_latent_vs_truth_mem_mb(wildcards, attempt):
    """Three SAEs of the experiment's first hook."""
    rows, d = store_shape(wildcards.exp, "toy")
    width = max(v.width for v in variants(wildcards.exp).values())
    return _mem(TORCH_MB, 3 * 2 * 4 * width * d, attempt)


# ---- models.smk ---------------------------------------------------------------


def _modular_params(src):
    per_layer = 4 * src["d_model"] * src["n_heads"] * src["d_head"] + 2 * src["d_model"] * src["d_mlp"]
    return src["n_layers"] * per_layer + src["p"] * src["d_model"]


def train_modular_model_mem_mb(wildcards, attempt):
    """Full-batch training: activations of every training pair through every layer."""
    src = EXPERIMENTS[wildcards.exp]["source"]
    pairs = src["p"] ** 2
    acts = 3 * pairs * (4 * src["d_model"] + src["d_mlp"] + 3 * src["n_heads"]) * src["n_layers"] * 4
    return _mem(LIBS_MB, 3 * acts + 16 * _modular_params(src), attempt)


def train_modular_model_runtime(wildcards, threads, attempt):
    """6 FLOPs per parameter per training token (3 tokens per pair) every epoch, plus evaluation."""
    src = EXPERIMENTS[wildcards.exp]["source"]
    tokens = 3 * src["p"] ** 2
    flops_per_epoch = (6.0 * src["train_frac"] + 2.0 / src["eval_every"]) * tokens * _modular_params(src)
    return _minutes(flops_per_epoch * src["epochs"], threads, GPU, attempt)


def extract_modular_mem_mb(exp):
    def mem_mb(wildcards, attempt):
        src = EXPERIMENTS[exp]["source"]
        stores = sum(8 * _store_chunk(exp) * store_shape(exp, h)[1] * 4 for h in hooks(exp))
        return _mem(LIBS_MB, stores + 16 * _modular_params(src) + 4 * src["p"] ** 2 * src["d_mlp"] * 4, attempt)

    return mem_mb


def extract_modular_runtime(exp):
    def runtime(wildcards, attempt):
        src = EXPERIMENTS[exp]["source"]
        rows = max(store_shape(exp, h)[0] for h in hooks(exp))
        return _minutes(2.0 * 3 * rows * _modular_params(src) + 1e9 * src["p"], attempt=attempt)

    return runtime


def build_corpus_mem_mb(wildcards, attempt):
    """Tokenizer plus the tokenised corpus (and its text)."""
    n_tokens = EXPERIMENTS[wildcards.exp]["source"]["corpus"]["n_tokens"]
    return _mem(2 * LIBS_MB, 64 * n_tokens, attempt)


def build_corpus_runtime(wildcards, attempt):
    n_tokens = EXPERIMENTS[wildcards.exp]["source"]["corpus"]["n_tokens"]
    return (2 * MIN_RUNTIME + int(math.ceil(n_tokens / 100_000))) * attempt


def extract_mem_mb(exp):
    """A language model (float32, plus copies while it is converted), one batch's hidden
    states and logits, chunk buffers per hook."""

    def mem_mb(wildcards, attempt):
        src = EXPERIMENTS[exp]["source"]
        d, params, layers = language_model_size(exp)
        n_ctx = src["corpus"]["n_ctx"]
        batch = src["batch_size"]
        hidden = 4 * batch * n_ctx * d * (layers + 8) + 4 * batch * n_ctx * 49152  # + logits
        buffers = sum(2 * _store_chunk(exp) * store_shape(exp, h)[1] * 4 for h in hooks(exp))
        return _mem(LIBS_MB, 4 * 4 * params + hidden + buffers, attempt)

    return mem_mb


def extract_runtime(exp):
    """2 FLOPs per parameter per token, plus loading the model."""

    def runtime(wildcards, threads, attempt):
        d, params, layers = language_model_size(exp)
        rows = max(store_shape(exp, h)[0] for h in hooks(exp))
        return _minutes(2.0 * params * rows, threads, GPU, attempt) + 5 * attempt

    return runtime


# ---- universality.smk ---------------------------------------------------------


def _typical_l0(variant):
    return variant.sparsity if variant.sparsity_key == "k" else min(variant.width, 256)


def _comparison_sides(wildcards):
    """(aligned rows, [(d, width, typical L0) for sides a and b]) of one comparison job."""
    sides, rows = [], []
    for side, hook in (("a", wildcards.hook_a), ("b", wildcards.hook_b)):
        exp, variant, _, _ = comparison_side(wildcards.cmp, side)
        v = variants(exp)[variant]
        n, d = store_shape(exp, hook)
        rows.append(n)
        sides.append((d, v.width, _typical_l0(v)))
    n = min(rows)
    return min(n, COMPARISONS[wildcards.cmp].get("max_tokens") or n), sides


def compare_by_activations_mem_mb(wildcards, attempt):
    """Both SAEs' sparse codes on the aligned tokens (value and index per active latent),
    per-latent candidates, and the sampled rows of the relational and neuron-space measures
    (measured: 32k x 32k latents on 1M tokens peak at 1.6 GB)."""
    rows, sides = _comparison_sides(wildcards)
    max_rows = COMPARISONS[wildcards.cmp]["max_rows"]
    n_bytes = sum(12 * rows * l0 + 64 * 8 * w + 4 * 4 * w * d + 8 * max_rows * (w + d) for d, w, l0 in sides)
    return _mem(LIBS_MB, n_bytes, attempt)


def compare_by_activations_runtime(wildcards, threads, attempt):
    """Co-firing counts (about 50 ns per co-active pair of latents on a token), the dense
    neuron-space reference, and the relational measures on the sampled rows."""
    rows, sides = _comparison_sides(wildcards)
    (d_a, w_a, l0_a), (d_b, w_b, l0_b) = sides
    seconds = 50e-9 * rows * l0_a * l0_b
    flops = 2.0 * rows * (d_a * d_b + w_a * d_a + w_b * d_b)
    return _minutes(flops + seconds * CPU_FLOPS * max(1, threads), threads, attempt=attempt)


def downstream_mem_mb(wildcards, attempt):
    """The model and its activations like extraction, the SAEs, three batches of log-probabilities."""
    exp = wildcards.exp
    src = EXPERIMENTS[exp]["source"]
    d, params, layers = language_model_size(exp)
    batch = src.get("batch_size", 8)
    n_ctx = src.get("corpus", {}).get("n_ctx", 128)
    saes = sum(2 * 4 * d * v.width for _, vid in hook_variants(exp) for v in [variants(exp)[vid]]) * len(seeds(exp))
    logp = 3 * 4 * batch * n_ctx * 49152
    return _mem(LIBS_MB, 4 * 4 * params + 4 * batch * n_ctx * d * (layers + 8) + logp + saes, attempt)


def downstream_runtime(wildcards, threads, attempt):
    """One forward pass clean, one per hook zero-ablated, one per SAE, over the held-out tokens."""
    exp = wildcards.exp
    src = EXPERIMENTS[exp]["source"]
    d, params, layers = language_model_size(exp)
    tokens = EXPERIMENTS[exp]["downstream"]["n_contexts"] * src.get("corpus", {}).get("n_ctx", 128)
    passes = 1 + len(hooks(exp)) + len(hook_variants(exp)) * len(seeds(exp))
    return _minutes(2.0 * params * tokens * passes, threads, GPU, attempt) + 5 * attempt


def coactivation_mem_mb(wildcards, attempt):
    """Co-firing counts (at most tokens x L0^2 / 2 pairs, 16 bytes each, times three while
    summed) and one chunk of dense codes."""
    exp = wildcards.exp
    opts = EXPERIMENTS[exp]["coactivation"]
    widest = max(variants(exp)[v].width for _, v in hook_variants(exp))
    l0 = max(_typical_l0(variants(exp)[v]) for _, v in hook_variants(exp))
    pairs = min(widest**2 / 2, opts["max_rows"] * l0**2 / 2)
    return _mem(LIBS_MB, 3 * 16 * pairs + 4 * 1024 * widest, attempt)


def coactivation_runtime(wildcards, attempt):
    """Encoding the rows once per SAE and one matching per seed pair."""
    exp = wildcards.exp
    d = max(store_shape(exp, h)[1] for h in hooks(exp))
    rows = EXPERIMENTS[exp]["coactivation"]["max_rows"]
    flops = sum(2.0 * rows * d * variants(exp)[v].width + _compare_flops(variants(exp)[v].width, d) for _, v in hook_variants(exp))
    return _minutes(flops * len(seeds(exp)), 1, 0, attempt)
# ---- convergence.smk ----------------------------------------------------------


def _convergence_job(wildcards):
    """A train_sae-like wildcards object for the variant and hook of an experiment's convergence job."""
    from types import SimpleNamespace

    variant, hook, fractions = convergence_target(EXPERIMENTS[wildcards.exp])
    return SimpleNamespace(exp=wildcards.exp, variant=variant, hook=hook), fractions


def convergence_mem_mb(wildcards, attempt):
    """One SAE training at a time, plus every seed's snapshot decoders of one fraction."""
    job, fractions = _convergence_job(wildcards)
    _, d = store_shape(job.exp, job.hook)
    width = _width(job)
    snapshots = len(fractions) * 2 * 4 * width * d + len(seeds(job.exp)) * 4 * width * d
    return train_sae_mem_mb(job, attempt) + _mem(0, snapshots, attempt)


def convergence_runtime(wildcards, threads, attempt):
    """Each seed's training again (as train_sae_runtime), plus a pair comparison per fraction
    and seed pair (CPU), in one estimate."""
    job, fractions = _convergence_job(wildcards)
    training = EXPERIMENTS[job.exp]["sae"]["training"]
    _, d = store_shape(job.exp, job.hook)
    width = _width(job)
    n = len(seeds(job.exp))
    train = n * 12.0 * (training["training_samples"] + len(fractions) * training["eval_rows"]) * width * d
    compare = len(fractions) * n * (n - 1) // 2 * _compare_flops(width, d)
    return _minutes(train, threads, GPU, attempt) + _minutes(compare, attempt=attempt) - MIN_RUNTIME * attempt


# ---- suites.smk ---------------------------------------------------------------


def _suite_member_shape(suite, label):
    """(latents, d) of one suite member: the variant's width and store d, or an imported SAE's cfg.json."""
    s = SUITES[suite]
    exp = s["experiment"]
    if is_imported(exp):
        item = IMPORTED[exp][label]
        shape = None if item["registry"] else suite_runs.local_shape(item["spec"])
        return shape or suite_runs.UNKNOWN_SAE_SHAPE
    hook, variant = (label, s["variant"]) if s["axis"] == "hook" else (s["hook"], label)
    return variants(exp)[variant].width, store_shape(exp, hook)[1]


def _uses_registry(exp, *labels):
    return any(IMPORTED[exp][lab]["registry"] for lab in labels)


def import_sae_mem_mb(wildcards, attempt):
    """Reading one SAE; with a store, sae-lens or sparsify, its weights and a chunk's codes."""
    item = IMPORTED[wildcards.exp][wildcards.label]
    n, d = (None if item["registry"] else suite_runs.local_shape(item["spec"])) or suite_runs.UNKNOWN_SAE_SHAPE
    heavy = item["registry"] or EXPERIMENTS[wildcards.exp]["source"].get("store")
    return _mem(LIBS_MB if heavy else BASE_MB, 3 * 4 * n * d + 3 * 4 * 4096 * n, attempt)


def import_sae_runtime(wildcards, attempt):
    src = EXPERIMENTS[wildcards.exp]["source"]
    item = IMPORTED[wildcards.exp][wildcards.label]
    n, d = (None if item["registry"] else suite_runs.local_shape(item["spec"])) or suite_runs.UNKNOWN_SAE_SHAPE
    rows = src["eval_rows"] if src.get("store") else 0
    return _minutes(4.0 * rows * n * d, attempt=attempt)


def suite_cell_mem_mb(wildcards, attempt):
    """Two SAEs' decoders and encoders (and normalised copies) plus the chunked matrices' budget."""
    n_a, d = _suite_member_shape(wildcards.suite, wildcards.a)
    n_b, _ = _suite_member_shape(wildcards.suite, wildcards.b)
    exp = SUITES[wildcards.suite]["experiment"]
    libs = LIBS_MB if is_imported(exp) and _uses_registry(exp, wildcards.a, wildcards.b) else TORCH_MB
    return _mem(libs + config["memory_budget_mb"], 2 * 2 * 4 * (n_a + n_b) * d, attempt)


def suite_cell_runtime(wildcards, attempt):
    """The pair and its random baseline (baseline_draws pairs of the same shapes)."""
    n_a, d = _suite_member_shape(wildcards.suite, wildcards.a)
    n_b, _ = _suite_member_shape(wildcards.suite, wildcards.b)
    return _minutes((1 + config["baseline_draws"]) * _compare_flops(max(n_a, n_b), d), attempt=attempt)
