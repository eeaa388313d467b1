"""The resource cost model: memory (MB) and run time (minutes) of every job of the workflow.

Pure functions of one experiment's validated config (``exp``: ``config["experiments"][name]``,
defaults filled by the schema) and plain numbers (SAE width, d, store rows, threads, GPU
or not, the attempt), and :class:`RuleCosts`, which binds them to the plan as the rules'
resource functions (``plan.cost``).

Convention for every rule file, present and future:

* Each rule sets ``threads`` (1, or ``config["threads_per_job"]`` where it runs torch with
  that many threads) and, in its ``resources:`` block, ``mem_mb=plan.cost.mem_mb("<rule>")``
  and ``runtime=plan.cost.runtime("<rule>")`` (:class:`RuleCosts`: the rule's name, ``exp=``
  for rules declared once per experiment, ``"table"`` for tables and figures). Rule files
  hold no sizes: sizes follow the job (SAE width, store rows, d). On SLURM, threads become
  ``--cpus-per-task``, mem_mb ``--mem``, runtime (minutes) ``-t``.
* A rule whose script runs torch on the configured device (SAE training, language-model
  extraction, the modular model, later large comparisons) adds ``gpu=plan.gpu`` (1 when config
  ``device`` resolves to CUDA, else 0). CPU-only rules have no gpu key. gpu=0 requests
  nothing; gpu=1 becomes ``--gpus=1`` on SLURM, counts against ``--resources gpu=N`` on a
  workstation, and saesim.workflow.rulekit.run() pins the job to a free device
  (saesim.workflow.gpu) unless SLURM already chose one (``CUDA_VISIBLE_DEVICES``). The
  submitting host decides: a login node without a GPU resolves device=auto to CPU, so a GPU
  cluster is run with ``--config device=cuda``.
* Memory and run time are multiplied by the attempt, so a job killed for memory or time (the
  SLURM profile retries) asks for more next time.
* Every estimate has a safety margin; a profile or the command line overrides any rule:
  ``set-resources: {train_saes_smollm2: {mem_mb: 64000, runtime: 720}}`` or
  ``--set-resources train_saes_smollm2:runtime=720`` (per-experiment rules:
  ``train_saes_<exp>``, ``extract_activations_<exp>``).

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import math

from saesim.sources import kinds as source_kinds
from saesim.workflow.suite_runs import UNKNOWN_SAE_SHAPE, local_shape

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
# vocabulary of the logits a language-model batch holds (SmolLM2's, an upper bound for small models)
VOCAB = 49152


def mb(n_bytes):
    """Bytes -> MiB, rounded up."""
    return int(math.ceil(n_bytes / MIB))


def mem(base_mb, n_bytes, attempt=1):
    """``base_mb`` plus 1.5 times ``n_bytes``, times the attempt."""
    return (base_mb + mb(1.5 * n_bytes)) * attempt


def minutes(flops, threads=1, gpu=0, attempt=1):
    """Minutes for ``flops`` on one GPU or ``threads`` CPU threads, with margin and floor, times the attempt."""
    rate = GPU_FLOPS if gpu else CPU_FLOPS * max(1, threads)
    return (MIN_RUNTIME + int(math.ceil(RUNTIME_MARGIN * flops / rate / 60))) * attempt


def dtype_bytes(exp):
    """Bytes per value of an experiment's activation stores."""
    return 2 if exp["store"]["dtype"] == "float16" else 4


def language_model_size(exp):
    """(d_model, parameters, layers) of an experiment's language model (estimates for unknown ones)."""
    return KNOWN_MODELS.get(exp["source"]["kind"], UNKNOWN_MODEL)


def store_shape(exp, hook):
    """(rows, d) of one activation store, from the validated config (defaults from the schema)."""
    src, store = exp["source"], exp["store"]
    family = source_kinds.of(exp).store_rule
    if family == "toy":
        return store["n_rows"], src["model"]["hidden_dim"]
    if family == "modular":
        d = src["d_mlp"] if ("mlp.hook_post" in hook or "mlp.hook_pre" in hook) else src["d_model"]
        # without n_rows, every one of the p * p inputs once (saesim.sources.extraction.modular_row_order)
        return store.get("n_rows") or src["p"] ** 2, d
    return src["corpus"]["n_tokens"], language_model_size(exp)[0]


def store_chunk(exp):
    return exp["store"]["chunk_rows"]


def compare_flops(width, d):
    """|cos| tiles of two [width, d] decoders and of encoders in both directions, plus the assignment."""
    return 4.0 * width * width * d + 10.0 * width**3


def typical_l0(variant):
    """A variant's L0 for sizing: its k, or (other sparsity keys) min(width, 256)."""
    return variant.sparsity if variant.sparsity_key == "k" else min(variant.width, 256)


# ---- shared -------------------------------------------------------------------


def table_mem_mb(attempt):
    """Tables and figures: pandas and matplotlib on small CSVs."""
    return (BASE_MB + 200) * attempt


def short_runtime(attempt):
    return MIN_RUNTIME * attempt


# ---- stores -------------------------------------------------------------------


def synthetic_sizes(exp):
    """(num_features, rows per sample call, orthogonalisation steps) of a toy (sae_lens.synthetic) source."""
    model = exp["source"]["model"]
    n = model["num_features"]
    ortho = model.get("orthogonalization") or {}
    steps = ortho.get("num_steps", 200) if model.get("orthogonalization") is not None else 0
    return n, max(1, min(store_chunk(exp), 2**23 // n)), steps


def make_toy_store_mem_mb(exp, attempt):
    """sae-lens + dense feature activations of one sample call (a few copies) + the dictionary
    + one orthogonalisation chunk [1024, n] and its gradient."""
    rows, d = store_shape(exp, "toy")
    n, sample, steps = synthetic_sizes(exp)
    n_bytes = 4 * 4 * sample * (n + d) + 4 * 4 * n * d + (4 * 4 * min(1024, n) * n if steps else 0)
    return mem(LIBS_MB, n_bytes, attempt)


def make_toy_store_runtime(exp, attempt):
    rows, d = store_shape(exp, "toy")
    n, _, steps = synthetic_sizes(exp)
    return minutes(2.0 * rows * n * (d + 16) + 6.0 * steps * n * n * d, attempt=attempt)


def make_null_store_mem_mb(exp, hook, attempt):
    """A chunk of the source and of the draws (float64), the covariance and its factor, row masks."""
    rows, d = store_shape(exp, hook)
    chunk = store_chunk(exp)
    return mem(BASE_MB, 4 * 8 * chunk * d + 6 * 8 * d * d + 16 * rows, attempt)


def make_null_store_runtime(exp, hook, attempt):
    """Row norms, the covariance (2 rows d^2) and the draws (2 rows d^2)."""
    rows, d = store_shape(exp, hook)
    return minutes(4.0 * rows * d * d + 10.0 * d**3, attempt=attempt)


# ---- SAE training ---------------------------------------------------------------


def train_sae_mem_mb(exp, hook, width, attempt):
    """Weights, gradients and two Adam moments; a batch's latents; streamed chunks; masks."""
    training = exp["sae"]["training"]
    rows, d = store_shape(exp, hook)
    params = 2 * width * d + width + d
    n_bytes = (
        4 * 4 * params  # weights, gradients, Adam m and v
        + 6 * 4 * max(training["batch_size"], 4096) * width  # latents (training batch, eval chunk)
        + 4 * 4 * training["batch_size"] * d
        + 8 * store_chunk(exp) * d * dtype_bytes(exp)  # shuffled chunks in flight
        + 16 * rows  # row masks, indices, positions
    )
    return mem(LIBS_MB, n_bytes, attempt)


def train_sae_runtime(exp, hook, width, threads, gpu, attempt):
    """12 FLOPs per weight per sample (encode, decode, backward), plus evaluation."""
    training = exp["sae"]["training"]
    _, d = store_shape(exp, hook)
    samples = training["training_samples"] + training["eval_rows"]
    return minutes(12.0 * samples * width * d, threads, gpu, attempt)


def train_experiment_mem_mb(exp, hook_widths, attempt):
    """A job that trains several SAEs one after the other (``hook_widths``: (hook, width) of
    each variant): the largest one."""
    return max(train_sae_mem_mb(exp, h, w, attempt) for h, w in hook_widths)


def train_experiment_runtime(exp, hook_widths, n_seeds, threads, gpu, attempt):
    """Every (hook, width) variant for ``n_seeds`` seeds, one after the other."""
    return n_seeds * sum(train_sae_runtime(exp, h, w, threads, gpu, attempt) for h, w in hook_widths)


# ---- comparisons of SAEs (similarity) -------------------------------------------


def compare_mem_mb(exp, hook, width, memory_budget_mb, attempt):
    """Two SAEs' decoders and encoders (and normalised copies) plus the chunked matrices' budget."""
    _, d = store_shape(exp, hook)
    n_bytes = 2 * 2 * 2 * 4 * width * d
    return mem(TORCH_MB + memory_budget_mb, n_bytes, attempt)


def compare_runtime(exp, hook, width, attempt):
    _, d = store_shape(exp, hook)
    return minutes(compare_flops(width, d), attempt=attempt)


def decoder_baseline_runtime(exp, hook, width, baseline_draws, attempt):
    _, d = store_shape(exp, hook)
    return minutes(baseline_draws * compare_flops(width, d), attempt=attempt)


def sae_eval_mem_mb(exp, hook, width, attempt):
    """One SAE against small ground truth (toy features, Fourier basis); sae-lens for the toy's
    library metrics: Hungarian cost matrix [width, n_features] in float64, a few copies."""
    _, d = store_shape(exp, hook)
    n = synthetic_sizes(exp)[0] if source_kinds.of(exp).store_rule == "toy" else 0
    base = LIBS_MB if n else TORCH_MB
    return mem(base, 4 * 4 * width * d + 8 * width * max(d, 256) + 3 * 8 * width * n, attempt)


# ---- figures --------------------------------------------------------------------


def plot_latent_vs_truth_mem_mb(exp, widths, attempt):
    """Three SAEs of the experiment's first hook, at most the widest of ``widths``."""
    rows, d = store_shape(exp, "toy")
    return mem(TORCH_MB, 3 * 2 * 4 * max(widths) * d, attempt)


# ---- models ---------------------------------------------------------------------


def modular_params(src):
    """Parameters of the modular-addition transformer of a ``modular`` source."""
    per_layer = 4 * src["d_model"] * src["n_heads"] * src["d_head"] + 2 * src["d_model"] * src["d_mlp"]
    return src["n_layers"] * per_layer + src["p"] * src["d_model"]


def train_modular_model_mem_mb(exp, attempt):
    """Full-batch training: activations of every training pair through every layer."""
    src = exp["source"]
    pairs = src["p"] ** 2
    acts = 3 * pairs * (4 * src["d_model"] + src["d_mlp"] + 3 * src["n_heads"]) * src["n_layers"] * 4
    return mem(LIBS_MB, 3 * acts + 16 * modular_params(src), attempt)


def train_modular_model_runtime(exp, threads, gpu, attempt):
    """6 FLOPs per parameter per training token (3 tokens per pair) every epoch, plus evaluation."""
    src = exp["source"]
    tokens = 3 * src["p"] ** 2
    flops_per_epoch = (6.0 * src["train_frac"] + 2.0 / src["eval_every"]) * tokens * modular_params(src)
    return minutes(flops_per_epoch * src["epochs"], threads, gpu, attempt)


def extract_modular_mem_mb(exp, hooks, attempt):
    src = exp["source"]
    stores = sum(8 * store_chunk(exp) * store_shape(exp, h)[1] * 4 for h in hooks)
    return mem(LIBS_MB, stores + 16 * modular_params(src) + 4 * src["p"] ** 2 * src["d_mlp"] * 4, attempt)


def extract_modular_runtime(exp, hooks, attempt):
    src = exp["source"]
    rows = max(store_shape(exp, h)[0] for h in hooks)
    return minutes(2.0 * 3 * rows * modular_params(src) + 1e9 * src["p"], attempt=attempt)


def build_corpus_mem_mb(exp, attempt):
    """Tokenizer plus the tokenised corpus (and its text)."""
    n_tokens = exp["source"]["corpus"]["n_tokens"]
    return mem(2 * LIBS_MB, 64 * n_tokens, attempt)


def build_corpus_runtime(exp, attempt):
    n_tokens = exp["source"]["corpus"]["n_tokens"]
    return (2 * MIN_RUNTIME + int(math.ceil(n_tokens / 100_000))) * attempt


def extract_mem_mb(exp, hooks, attempt):
    """A language model (float32, plus copies while it is converted), one batch's hidden
    states and logits, chunk buffers per hook."""
    src = exp["source"]
    d, params, layers = language_model_size(exp)
    n_ctx = src["corpus"]["n_ctx"]
    batch = src["batch_size"]
    hidden = 4 * batch * n_ctx * d * (layers + 8) + 4 * batch * n_ctx * VOCAB  # + logits
    buffers = sum(2 * store_chunk(exp) * store_shape(exp, h)[1] * 4 for h in hooks)
    return mem(LIBS_MB, 4 * 4 * params + hidden + buffers, attempt)


def extract_runtime(exp, hooks, threads, gpu, attempt):
    """2 FLOPs per parameter per token, plus loading the model."""
    d, params, layers = language_model_size(exp)
    rows = max(store_shape(exp, h)[0] for h in hooks)
    return minutes(2.0 * params * rows, threads, gpu, attempt) + 5 * attempt


# ---- universality: comparisons by activations, downstream loss, co-activation -----


def compare_by_activations_mem_mb(rows, sides, max_rows, attempt):
    """Both SAEs' sparse codes on the aligned tokens (value and index per active latent),
    per-latent candidates, and the sampled rows of the relational and neuron-space measures
    (measured: 32k x 32k latents on 1M tokens peak at 1.6 GB). ``sides``: (d, width, typical
    L0) of sides a and b; ``rows``: the aligned tokens."""
    n_bytes = sum(12 * rows * l0 + 64 * 8 * w + 4 * 4 * w * d + 8 * max_rows * (w + d) for d, w, l0 in sides)
    return mem(LIBS_MB, n_bytes, attempt)


def compare_by_activations_runtime(rows, sides, threads, attempt):
    """Co-firing counts (about 50 ns per co-active pair of latents on a token), the dense
    neuron-space reference, and the relational measures on the sampled rows."""
    (d_a, w_a, l0_a), (d_b, w_b, l0_b) = sides
    seconds = 50e-9 * rows * l0_a * l0_b
    flops = 2.0 * rows * (d_a * d_b + w_a * d_a + w_b * d_b)
    return minutes(flops + seconds * CPU_FLOPS * max(1, threads), threads, attempt=attempt)


def downstream_mem_mb(exp, widths, n_seeds, attempt):
    """The model and its activations like extraction, the SAEs (``widths``: one per hook and
    variant, ``n_seeds`` each), three batches of log-probabilities."""
    src = exp["source"]
    d, params, layers = language_model_size(exp)
    batch = src.get("batch_size", 8)
    n_ctx = src.get("corpus", {}).get("n_ctx", 128)
    saes = sum(2 * 4 * d * w for w in widths) * n_seeds
    logp = 3 * 4 * batch * n_ctx * VOCAB
    return mem(LIBS_MB, 4 * 4 * params + 4 * batch * n_ctx * d * (layers + 8) + logp + saes, attempt)


def downstream_runtime(exp, n_hooks, n_saes, threads, gpu, attempt):
    """One forward pass clean, one per hook zero-ablated, one per SAE (``n_saes``), over the held-out tokens."""
    src = exp["source"]
    d, params, layers = language_model_size(exp)
    tokens = exp["downstream"]["n_contexts"] * src.get("corpus", {}).get("n_ctx", 128)
    passes = 1 + n_hooks + n_saes
    return minutes(2.0 * params * tokens * passes, threads, gpu, attempt) + 5 * attempt


def causal_mem_mb(exp, attempt):
    """Causal equivalence: tables' memory for the modular model; for a language model the model,
    one batch of contexts (LM_BATCH_CONTEXTS, saesim.analysis.causal) and three float64 copies of
    its log-probabilities."""
    if not source_kinds.of(exp).language_model:
        return table_mem_mb(attempt)
    d, params, layers = language_model_size(exp)
    n_ctx = exp["source"].get("corpus", {}).get("n_ctx", 128)
    batch = 4
    logp = 3 * 8 * batch * n_ctx * VOCAB + 4 * batch * n_ctx * VOCAB
    return mem(LIBS_MB, 4 * 4 * params + 4 * batch * n_ctx * d * (layers + 8) + logp, attempt)


def causal_runtime(exp, threads, gpu, attempt):
    """Causal equivalence of a language model: one spliced forward per SAE and one per ablated
    latent (``n_pairs`` per SAE) over ``max_tokens``, plus loading the model; the modular
    model's runs are products with the unembedding (a table job's time)."""
    if not source_kinds.of(exp).language_model:
        return short_runtime(attempt)
    d, params, layers = language_model_size(exp)
    c = exp["causal"]
    passes = 2 * (1 + c["n_pairs"])
    return minutes(2.0 * params * c["max_tokens"] * passes, threads, gpu, attempt) + 5 * attempt


def causal_across_models_mem_mb(n_inputs, widths, vocab, attempt):
    """Causal equivalence across two modular models: both SAEs' dense codes (float32, twice while
    correlated as float64), the latent x latent correlation and three float64 copies of the
    log-probabilities ``n_inputs x vocab``."""
    return mem(LIBS_MB, 12 * n_inputs * sum(widths) + 8 * widths[0] * widths[1] + 3 * 8 * n_inputs * vocab, attempt)


def causal_across_models_runtime(attempt):
    """Each ablation is a product with the unembedding (modular_runner's shortcut): a table job's time."""
    return short_runtime(attempt)


def coactivation_mem_mb(exp, trained, attempt):
    """Co-firing counts (at most tokens x L0^2 / 2 pairs, 16 bytes each, times three while
    summed) and one chunk of dense codes. ``trained``: the Variant of every (hook, variant)."""
    opts = exp["coactivation"]
    widest = max(v.width for v in trained)
    l0 = max(typical_l0(v) for v in trained)
    pairs = min(widest**2 / 2, opts["max_rows"] * l0**2 / 2)
    return mem(LIBS_MB, 3 * 16 * pairs + 4 * 1024 * widest, attempt)


def coactivation_runtime(exp, hooks, widths, n_seeds, attempt):
    """Encoding the rows once per SAE and one matching per seed pair (``widths``: one per hook and variant)."""
    d = max(store_shape(exp, h)[1] for h in hooks)
    rows = exp["coactivation"]["max_rows"]
    flops = sum(2.0 * rows * d * w + compare_flops(w, d) for w in widths)
    return minutes(flops * n_seeds, 1, 0, attempt)


# ---- convergence ------------------------------------------------------------------


def convergence_mem_mb(exp, hook, width, n_fractions, n_seeds, attempt, n_null_seeds=0):
    """Every snapshot's decoder of every seed (real and null) held at once, plus one SAE
    (weights and its training state) being converted and evaluated; nothing is trained."""
    _, d = store_shape(exp, hook)
    snapshots = (n_seeds + n_null_seeds) * n_fractions * 4 * width * d + 4 * 4 * width * d
    return LIBS_MB * attempt + mem(0, snapshots, attempt)


def convergence_runtime(exp, hook, width, n_fractions, n_seeds, threads, gpu, attempt, n_null_seeds=0):
    """Reading the training run's snapshots: each snapshot evaluated on the held-out rows
    (encode and decode) and a pair comparison per fraction and seed pair (CPU), real and
    null, in one estimate. Nothing is trained again."""
    training = exp["sae"]["training"]
    _, d = store_shape(exp, hook)
    evaluate = (n_seeds + n_null_seeds) * n_fractions * 4.0 * training["eval_rows"] * width * d
    pairs = n_seeds * (n_seeds - 1) // 2 + n_null_seeds * (n_null_seeds - 1) // 2
    compare = n_fractions * pairs * compare_flops(width, d)
    return minutes(evaluate, threads, gpu, attempt) + minutes(compare, attempt=attempt) - MIN_RUNTIME * attempt


# ---- suites and imported SAEs --------------------------------------------------------


def import_sae_mem_mb(shape, heavy, attempt):
    """Reading one SAE of ``shape`` (latents, d); ``heavy`` (a registry SAE or a store to
    evaluate on: sae-lens or sparsify), its weights and a chunk's codes."""
    n, d = shape
    return mem(LIBS_MB if heavy else BASE_MB, 3 * 4 * n * d + 3 * 4 * 4096 * n, attempt)


def import_sae_runtime(shape, eval_rows, attempt):
    """Encoding ``eval_rows`` store rows (0 without a store)."""
    n, d = shape
    return minutes(4.0 * eval_rows * n * d, attempt=attempt)


def suite_cell_mem_mb(n_a, n_b, d, heavy, memory_budget_mb, attempt):
    """Two SAEs' decoders and encoders (and normalised copies) plus the chunked matrices' budget."""
    libs = LIBS_MB if heavy else TORCH_MB
    return mem(libs + memory_budget_mb, 2 * 2 * 4 * (n_a + n_b) * d, attempt)


def suite_cell_runtime(n_a, n_b, d, baseline_draws, attempt):
    """The pair and its random baseline (baseline_draws pairs of the same shapes)."""
    return minutes((1 + baseline_draws) * compare_flops(max(n_a, n_b), d), attempt=attempt)


# ---- per-latent stability (saesim.analysis.per_latent) ---------------------------------------


def per_latent_mem_mb(exp, shapes, memory_budget_mb, attempt):
    """One variant at a time: every seed's decoder (real and null), the scan's budget, one block
    of activations (within the budget) and sae-lens. ``shapes``: (width, d) of each variant."""
    n_saes = len(exp["sae"]["seeds"]) + len(exp.get("null", {}).get("seeds") or [])
    widest = max((w * d for w, d in shapes), default=0)
    return mem(LIBS_MB + memory_budget_mb, 2 * 4 * n_saes * widest, attempt)


def per_latent_runtime(exp, shapes, attempt):
    """Per SAE: encoding its held-out rows twice over; per seed pair: one decoder comparison."""
    n_real = len(exp["sae"]["seeds"])
    n_null = len(exp.get("null", {}).get("seeds") or [])
    rows = exp["sae"]["training"]["eval_rows"]
    flops = 0.0
    for w, d in shapes:
        flops += (n_real + n_null) * 4.0 * rows * w * d
        flops += (n_real * (n_real - 1) // 2 + n_null * (n_null - 1) // 2) * compare_flops(w, d)
    return minutes(flops, attempt=attempt)


# ---- the rules' resource functions, bound to the plan -------------------------------------


#: memory of a feature-pages job, the same at every attempt (not yet sized from the job)
FEATURE_PAGES_MB = 2000


class RuleCosts:
    """The resource functions of the workflow's rules, bound to one plan: ``plan.cost``
    (saesim.workflow.planning.Plan).

    ``mem_mb(rule)`` returns the rule's ``(wildcards, attempt) -> MB`` and ``runtime(rule)``
    its ``(wildcards, threads, attempt) -> minutes``, the functions a ``resources:`` block takes::

        resources:
            mem_mb=plan.cost.mem_mb("make_toy_store"),
            runtime=plan.cost.runtime("make_toy_store"),

    ``rule`` is the rule's name (``use rule`` copies keep their parent's resources); for a rule
    declared once per experiment (planning.rule_name, e.g. ``extract_activations_<exp>``) its
    prefix, with ``exp=`` the experiment; ``"table"`` for every rule that reads tables and
    draws figures. Each function reads its job from the plan and the job's wildcards (the
    experiment's config, SAE width, store shape, seeds) and calls the cost model above.
    """

    def __init__(self, plan):
        self.plan = plan

    def mem_mb(self, rule, exp=None):
        """``(wildcards, attempt) -> MB`` of ``rule`` (``exp``: of a rule declared once per experiment)."""
        estimate = self._estimate(rule, "mem_mb")

        def mem_mb(wildcards, attempt):
            return estimate(self._job(wildcards, exp), attempt)

        return mem_mb

    def runtime(self, rule, exp=None):
        """``(wildcards, threads, attempt) -> minutes`` of ``rule`` (``exp``: of a rule declared once per experiment)."""
        estimate = self._estimate(rule, "runtime")

        def runtime(wildcards, threads, attempt):
            return estimate(self._job(wildcards, exp), threads, attempt)

        return runtime

    def _estimate(self, rule, resource):
        estimate = getattr(self, f"_{rule}_{resource}", None)
        if estimate is None:
            known = sorted(n[1 : -len(resource) - 1] for n in dir(self) if n.startswith("_") and n.endswith(f"_{resource}"))
            raise ValueError(f"no {resource} estimate for rule {rule!r}; rules: {', '.join(known)}")
        return estimate

    @staticmethod
    def _job(wildcards, exp):
        """The job's wildcards, with ``exp`` (a rule declared per experiment may have no ``{exp}``)."""
        return wildcards if exp is None else _WithExperiment(wildcards, exp)

    # ---- facts of a job, from the plan

    def _exp(self, w):
        """The validated config of the job's experiment."""
        return self.plan.experiments[w.exp]

    def _width(self, w):
        """SAE width of a job with wildcards ``variant`` or ``width``."""
        if hasattr(w, "variant"):
            return self.plan.variants(w.exp)[w.variant].width
        return int(w.width)

    def _hook_widths(self, exp, null=False):
        """(hook, width) of every SAE variant an experiment trains (``null="randmodel"``: on its random model)."""
        return [(h, self.plan.variants(exp)[v].width) for h, v in self.plan.hook_variants(exp, null)]

    # ---- tables and figures (and the run time of other short jobs)

    def _table_mem_mb(self, w, attempt):
        return table_mem_mb(attempt)

    def _table_runtime(self, w, threads, attempt):
        return short_runtime(attempt)

    # ---- stores

    def _make_toy_store_mem_mb(self, w, attempt):
        return make_toy_store_mem_mb(self._exp(w), attempt)

    def _make_toy_store_runtime(self, w, threads, attempt):
        return make_toy_store_runtime(self._exp(w), attempt)

    def _make_null_store_mem_mb(self, w, attempt):
        return make_null_store_mem_mb(self._exp(w), w.hook, attempt)

    def _make_null_store_runtime(self, w, threads, attempt):
        return make_null_store_runtime(self._exp(w), w.hook, attempt)

    # ---- SAE training: one variant's seeds (wildcards hook, variant) or, with
    # sae.train_jobs: experiment, every SAE of the experiment (no wildcards)

    def _train_saes_mem_mb(self, w, attempt, null=False):
        if hasattr(w, "variant"):
            return train_sae_mem_mb(self._exp(w), w.hook, self._width(w), attempt)
        return train_experiment_mem_mb(self._exp(w), self._hook_widths(w.exp, null), attempt)

    def _train_saes_runtime(self, w, threads, attempt, null=False):
        # the job's seeds: sae.seeds, null.seeds for the null's rule, model_null.seeds for the random model's
        n = len(self.plan.seeds(w.exp, null))
        if hasattr(w, "variant"):
            return n * train_sae_runtime(self._exp(w), w.hook, self._width(w), threads, self.plan.gpu, attempt)
        return train_experiment_runtime(self._exp(w), self._hook_widths(w.exp, null), n, threads, self.plan.gpu, attempt)

    _train_null_saes_mem_mb = _train_saes_mem_mb

    def _train_null_saes_runtime(self, w, threads, attempt):
        return self._train_saes_runtime(w, threads, attempt, null=True)

    def _train_randmodel_saes_mem_mb(self, w, attempt):
        return self._train_saes_mem_mb(w, attempt, null="randmodel")

    def _train_randmodel_saes_runtime(self, w, threads, attempt):
        return self._train_saes_runtime(w, threads, attempt, null="randmodel")

    # ---- comparisons of SAEs, evaluation against ground truth

    def _compare_seed_pair_mem_mb(self, w, attempt):
        return compare_mem_mb(self._exp(w), w.hook, self._width(w), self.plan.config["memory_budget_mb"], attempt)

    def _compare_seed_pair_runtime(self, w, threads, attempt):
        return compare_runtime(self._exp(w), w.hook, self._width(w), attempt)

    _decoder_baseline_mem_mb = _compare_seed_pair_mem_mb

    def _decoder_baseline_runtime(self, w, threads, attempt):
        return decoder_baseline_runtime(self._exp(w), w.hook, self._width(w), self.plan.config["baseline_draws"], attempt)

    def _ground_truth_recovery_mem_mb(self, w, attempt):
        return sae_eval_mem_mb(self._exp(w), w.hook, self._width(w), attempt)

    _ground_truth_recovery_runtime = _table_runtime
    _fourier_overlap_mem_mb = _ground_truth_recovery_mem_mb
    _fourier_overlap_runtime = _table_runtime

    def _plot_latent_vs_truth_mem_mb(self, w, attempt):
        widths = [v.width for v in self.plan.variants(w.exp).values()]
        return plot_latent_vs_truth_mem_mb(self._exp(w), widths, attempt)

    _plot_latent_vs_truth_runtime = _table_runtime

    # ---- models

    def _train_modular_model_mem_mb(self, w, attempt):
        return train_modular_model_mem_mb(self._exp(w), attempt)

    def _train_modular_model_runtime(self, w, threads, attempt):
        return train_modular_model_runtime(self._exp(w), threads, self.plan.gpu, attempt)

    def _extract_modular_stores_mem_mb(self, w, attempt):
        return extract_modular_mem_mb(self._exp(w), self.plan.hooks(w.exp), attempt)

    def _extract_modular_stores_runtime(self, w, threads, attempt):
        return extract_modular_runtime(self._exp(w), self.plan.hooks(w.exp), attempt)

    def _build_corpus_mem_mb(self, w, attempt):
        return build_corpus_mem_mb(self._exp(w), attempt)

    def _build_corpus_runtime(self, w, threads, attempt):
        return build_corpus_runtime(self._exp(w), attempt)

    def _extract_activations_mem_mb(self, w, attempt):
        return extract_mem_mb(self._exp(w), self.plan.hooks(w.exp), attempt)

    def _extract_activations_runtime(self, w, threads, attempt):
        return extract_runtime(self._exp(w), self.plan.hooks(w.exp), threads, self.plan.gpu, attempt)

    def _extract_randmodel_stores_mem_mb(self, w, attempt):
        """The random model's stores: a language model's or the modular model's extraction at its hooks."""
        hooks = self.plan.randmodel_hooks(w.exp)
        if self.plan.source_kind(w.exp).store_rule == "modular":
            return extract_modular_mem_mb(self._exp(w), hooks, attempt)
        return extract_mem_mb(self._exp(w), hooks, attempt)

    def _extract_randmodel_stores_runtime(self, w, threads, attempt):
        hooks = self.plan.randmodel_hooks(w.exp)
        if self.plan.source_kind(w.exp).store_rule == "modular":
            return extract_modular_runtime(self._exp(w), hooks, attempt)
        return extract_runtime(self._exp(w), hooks, threads, self.plan.gpu, attempt)

    # ---- universality: comparisons by activations, downstream loss, co-activation

    def _comparison_sides(self, w):
        """(aligned rows, [(d, width, typical L0) of sides a and b]) of one comparison job."""
        sides, rows = [], []
        for side, hook in (("a", w.hook_a), ("b", w.hook_b)):
            exp, variant, _, _ = self.plan.comparison_side(w.cmp, side)
            v = self.plan.variants(exp)[variant]
            n, d = store_shape(self.plan.experiments[exp], hook)
            rows.append(n)
            sides.append((d, v.width, typical_l0(v)))
        n = min(rows)
        return min(n, self.plan.comparisons[w.cmp].get("max_tokens") or n), sides

    def _compare_by_activations_mem_mb(self, w, attempt):
        rows, sides = self._comparison_sides(w)
        return compare_by_activations_mem_mb(rows, sides, self.plan.comparisons[w.cmp]["max_rows"], attempt)

    def _compare_by_activations_runtime(self, w, threads, attempt):
        rows, sides = self._comparison_sides(w)
        return compare_by_activations_runtime(rows, sides, threads, attempt)

    def _downstream_loss_mem_mb(self, w, attempt):
        widths = [width for _, width in self._hook_widths(w.exp)]
        return downstream_mem_mb(self._exp(w), widths, len(self.plan.seeds(w.exp)), attempt)

    def _downstream_loss_runtime(self, w, threads, attempt):
        n_saes = len(self.plan.hook_variants(w.exp)) * len(self.plan.seeds(w.exp))
        return downstream_runtime(self._exp(w), len(self.plan.hooks(w.exp)), n_saes, threads, self.plan.gpu, attempt)

    def _causal_equivalence_mem_mb(self, w, attempt):
        return causal_mem_mb(self._exp(w), attempt)

    def _causal_equivalence_runtime(self, w, threads, attempt):
        return causal_runtime(self._exp(w), threads, self.plan.gpu, attempt)

    def _causal_across_models_mem_mb(self, w, attempt):
        widths, inputs = [], []
        for side in ("a", "b"):
            exp, variant, _, _ = self.plan.comparison_side(w.cmp, side)
            widths.append(self.plan.variants(exp)[variant].width)
            inputs.append(self.plan.experiments[exp]["source"].get("p", 113) ** 2)
        n = min(min(inputs), self.plan.comparisons[w.cmp]["causal"].get("max_inputs") or min(inputs))
        return causal_across_models_mem_mb(n, widths, round(max(inputs) ** 0.5) + 1, attempt)  # vocab p + 1

    def _causal_across_models_runtime(self, w, threads, attempt):
        return causal_across_models_runtime(attempt)

    def _coactivation_mem_mb(self, w, attempt):
        trained = [self.plan.variants(w.exp)[v] for _, v in self.plan.hook_variants(w.exp)]
        return coactivation_mem_mb(self._exp(w), trained, attempt)

    def _coactivation_runtime(self, w, threads, attempt):
        widths = [width for _, width in self._hook_widths(w.exp)]
        return coactivation_runtime(self._exp(w), self.plan.hooks(w.exp), widths, len(self.plan.seeds(w.exp)), attempt)

    # ---- convergence and seed modes

    def _snapshot_job(self, w, block):
        """(experiment config, hook, width, fractions, modes) of the variant a snapshot block reads."""
        variant, hook, fractions, modes = self.plan.snapshot_target(w.exp, block)
        return self._exp(w), hook, self.plan.variants(w.exp)[variant].width, fractions, modes

    def _convergence_mem_mb(self, w, attempt):
        exp, hook, width, fractions, _ = self._snapshot_job(w, "convergence")
        n_null = len(self.plan.convergence_null_seeds(w.exp))
        return convergence_mem_mb(exp, hook, width, len(fractions), len(self.plan.seeds(w.exp)), attempt, n_null)

    def _convergence_runtime(self, w, threads, attempt):
        exp, hook, width, fractions, _ = self._snapshot_job(w, "convergence")
        n_null = len(self.plan.convergence_null_seeds(w.exp))
        n = len(self.plan.seeds(w.exp))
        return convergence_runtime(exp, hook, width, len(fractions), n, threads, self.plan.gpu, attempt, n_null)

    def _seed_modes_mem_mb(self, w, attempt):
        exp, hook, width, fractions, _ = self._snapshot_job(w, "seed_modes")
        n = len(self.plan.seeds(w.exp))
        return max(train_sae_mem_mb(exp, hook, width, attempt), convergence_mem_mb(exp, hook, width, len(fractions), n, attempt))

    def _seed_modes_runtime(self, w, threads, attempt):
        """Training the modes other than the experiment's own, and reading every mode's trajectory."""
        exp, hook, width, fractions, modes = self._snapshot_job(w, "seed_modes")
        n = len(self.plan.seeds(w.exp))
        n_trained = len([m for m in modes if m != self.plan.own_seed_mode(w.exp)])
        train = n_trained * n * train_sae_runtime(exp, hook, width, threads, self.plan.gpu, attempt)
        return train + len(modes) * convergence_runtime(exp, hook, width, len(fractions), n, threads, self.plan.gpu, attempt)

    # ---- suites and imported SAEs

    def _imported_shape(self, exp, label):
        """(latents, d) of an imported SAE: its cfg.json, or suite_runs.UNKNOWN_SAE_SHAPE."""
        item = self.plan.imported[exp][label]
        shape = None if item["registry"] else local_shape(item["spec"])
        return shape or UNKNOWN_SAE_SHAPE

    def _suite_member_shape(self, suite, label):
        """(latents, d) of one suite member: the variant's width and store d, or an imported SAE's cfg.json."""
        exp = self.plan.suites[suite]["experiment"]
        if self.plan.is_imported(exp):
            return self._imported_shape(exp, label)
        member = self.plan.suite_members(suite)[label]
        return self.plan.variants(exp)[member["variant"]].width, store_shape(self.plan.experiments[exp], member["hook"])[1]

    def _import_sae_mem_mb(self, w, attempt):
        heavy = self.plan.imported[w.exp][w.label]["registry"] or self._exp(w)["source"].get("store")
        return import_sae_mem_mb(self._imported_shape(w.exp, w.label), heavy, attempt)

    def _import_sae_runtime(self, w, threads, attempt):
        src = self._exp(w)["source"]
        return import_sae_runtime(self._imported_shape(w.exp, w.label), src["eval_rows"] if src.get("store") else 0, attempt)

    def _suite_cell_mem_mb(self, w, attempt):
        (n_a, d), (n_b, _) = self._suite_member_shape(w.suite, w.a), self._suite_member_shape(w.suite, w.b)
        exp = self.plan.suites[w.suite]["experiment"]
        heavy = self.plan.is_imported(exp) and any(self.plan.imported[exp][label]["registry"] for label in (w.a, w.b))
        return suite_cell_mem_mb(n_a, n_b, d, heavy, self.plan.config["memory_budget_mb"], attempt)

    def _suite_cell_runtime(self, w, threads, attempt):
        (n_a, d), (n_b, _) = self._suite_member_shape(w.suite, w.a), self._suite_member_shape(w.suite, w.b)
        return suite_cell_runtime(n_a, n_b, d, self.plan.config["baseline_draws"], attempt)

    # ---- per-latent stability and feature pages (declared per experiment: exp=)

    def _per_latent_shapes(self, exp):
        """(width, d) of every SAE variant an experiment trains."""
        return [(width, store_shape(self.plan.experiments[exp], h)[1]) for h, width in self._hook_widths(exp)]

    def _per_latent_mem_mb(self, w, attempt):
        return per_latent_mem_mb(self._exp(w), self._per_latent_shapes(w.exp), self.plan.config["memory_budget_mb"], attempt)

    def _per_latent_runtime(self, w, threads, attempt):
        return per_latent_runtime(self._exp(w), self._per_latent_shapes(w.exp), attempt)

    def _feature_pages_mem_mb(self, w, attempt):
        return FEATURE_PAGES_MB

    _feature_pages_runtime = _table_runtime


class _WithExperiment:
    """A job's wildcards and ``exp``, the experiment of the rule it was declared for."""

    def __init__(self, wildcards, exp):
        self.wildcards = wildcards
        self.exp = exp

    def __getattr__(self, name):
        return getattr(self.wildcards, name)
