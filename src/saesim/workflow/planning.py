"""DAG planning of the workflow: which SAEs an experiment trains, which seed pairs it
compares, which figure panels it draws, and the keyword arguments of its jobs.

Pure functions of one experiment's validated config (``exp``: ``config["experiments"][name]``,
defaults filled by the schema) or of other config blocks, and :class:`Plan`, built once from the
whole config in ``workflow/rules/common.smk``: its methods are the rules' input functions and
params, by experiment name or from a job's wildcards.

Kept free of heavy imports: the Snakefile imports this module at parse time.
"""

from __future__ import annotations

import copy

from saesim.workflow import layout
from saesim.sources import kinds as source_kinds
from saesim.saes.architectures import figure_choice
from saesim.workflow.config import expand_variants, expected_l0, model_null, seed_pair, snapshot_target
from saesim.errors import SaesimError, check_no_broken_links
from saesim.workflow.gpu import gpu_driver_present
from saesim.workflow.layout import ArtifactId
from saesim.workflow.resources import RuleCosts
from saesim.workflow.suite_runs import check_same_d, expand_imported

#: a regex that matches nothing: the wildcard constraint of a rule no experiment uses
NO_MATCH = "(?!x)x"


def names_regex(names):
    """A wildcard constraint matching exactly one of ``names`` (none: nothing)."""
    names = list(names)
    return "|".join(names) if names else NO_MATCH


# ---- what an experiment is ------------------------------------------------------


def kind(exp):
    return exp["source"]["kind"]


def has_ground_truth(exp):
    """Sources that know their true features (saesim.sources.kinds: ground_truth)."""
    return source_kinds.of(exp).ground_truth


def is_modular(exp):
    """The experiment trains its own modular-addition model (grokking curves)."""
    return source_kinds.of(exp).store_rule == "modular"


def has_fourier(exp):
    """The experiment's stores carry Fourier key frequencies (Fourier overlap of decoder rows)."""
    return source_kinds.of(exp).fourier


def is_imported(exp):
    """Imported SAEs, nothing trained (saesim.sources.kinds: trains_saes false)."""
    return not source_kinds.of(exp).trains_saes


def is_language(exp):
    return source_kinds.of(exp).language_model


def has_convergence(exp):
    return snapshot_target(exp, "convergence") is not None


def has_seed_modes(exp):
    """Whether an experiment compares shared and independent initialisation (saesim.analysis.seed_modes)."""
    return "sae" in exp and snapshot_target(exp, "seed_modes") is not None


def null_enabled(exp):
    """Trained experiments train the null unless told not to; imported SAEs have no null."""
    return not is_imported(exp) and exp["null"]["enabled"]


# ---- SAEs and seed pairs ----------------------------------------------------------


def hooks(exp):
    """The hooks an experiment reads (saesim.sources.kinds: a toy source has one, ``toy``)."""
    return source_kinds.hooks_of(exp)


def variants(exp):
    """Variant id -> saesim.workflow.config.Variant, in config order."""
    return {v.id: v for v in expand_variants(exp)}


def hook_variants(exp):
    """Every (hook, variant id) an experiment trains SAEs for, hooks first."""
    vs = variants(exp)
    return [(h, vid) for h in hooks(exp) for vid, v in vs.items() if v.trained_at(h)]


def pairs(items):
    """Every unordered pair of ``items``, in their order: (a, b) with a before b."""
    items = list(items)
    return [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]


def seed_pairs(seeds):
    """Every pair of seed labels, smaller first."""
    return pairs(sorted(seeds))


def baseline_widths(exp):
    """Hook -> the sorted SAE widths trained at it (one random-decoder baseline each)."""
    vs = variants(exp)
    trained = hook_variants(exp)
    return {h: sorted({vs[v].width for hv, v in trained if hv == h}) for h in hooks(exp)}


def sae_spec(exp, variant, seed, threads, device):
    """Keyword arguments of saesim.saes.training.SAESpec for one SAE (variant id, seed label)."""
    v = variants(exp)[variant]
    init_seed, data_seed = seed_pair(exp, int(seed))
    training = dict(exp["sae"]["training"])
    options = dict(v.options)
    training["lr"] = options.pop("lr", training["lr"])
    spec = dict(
        architecture=v.architecture,
        width=v.width,
        sparsity=v.sparsity,
        init_seed=init_seed,
        data_seed=data_seed,
        exclude_positions=list(exp["sae"]["exclude_positions"]),
        exclude_norm_above=exp["sae"].get("exclude_norm_above"),
        threads=threads,
        device=device,
        **training,
    )
    if "matryoshka_widths" in options:
        spec["matryoshka_widths"] = list(options.pop("matryoshka_widths"))
    spec.update(options)
    return spec


def modular_model_config(exp, device):
    """Keyword arguments of saesim.sources.modular.ModularConfig for one experiment."""
    src = dict(exp["source"])
    for key in ("kind", "key_rel_threshold"):
        src.pop(key, None)
    src["device"] = device
    return src


# ---- figure panels ----------------------------------------------------------------

#: every per-experiment figure, in target order, and whether an experiment draws it
FIGURES = {
    "stability_vs_l0": lambda exp: True,
    "seed_heatmap": lambda exp: True,
    "recovery_vs_l0": has_ground_truth,
    "latent_vs_truth": has_ground_truth,
    "pwmcc_vs_gtmcc": has_ground_truth,
    "grokking": is_modular,
    "fourier_overlap": has_fourier,
    "coactivation": lambda exp: True,
    "convergence": has_convergence,
    "seed_modes": lambda exp: has_seed_modes(exp),
}


def figure_names(exp):
    """The figures an experiment draws, in the order of FIGURES."""
    return [name for name, applies in FIGURES.items() if applies(exp)]


def truth_heatmap_variants(exp, where):
    """Variant ids of the latent x true-feature heatmap's panels: the SAEs below, nearest
    to, and above the true L0 (fewer when they coincide), for one architecture.

    The architecture is the k-sparse one with the most sparsities (ties: the registry's
    figure_rank, batchtopk first; saesim.saes.architectures.figure_choice). ``where`` names the
    experiment in the error (``experiments.<name>``).
    """
    true_l0 = expected_l0(exp["source"])
    by_arch = {}
    for v in variants(exp).values():
        if v.sparsity_key == "k":
            by_arch.setdefault(v.architecture, []).append(v)
    if not by_arch:
        raise SaesimError(f"{where}: the latent x true-feature heatmap needs a k-sparse SAE variant")
    arch = figure_choice({a: len(vs) for a, vs in by_arch.items()})
    vs = sorted(by_arch[arch], key=lambda v: v.sparsity)
    at = min(vs, key=lambda v: abs(v.sparsity - true_l0))
    return list({v.id: v for v in (vs[0], at, vs[-1])})


# ---- comparisons and suites ---------------------------------------------------------


def comparison_options(cmp):
    """A comparison's options for saesim.similarity.universality (its block without the sides a and b)."""
    c = dict(cmp)
    c.pop("a")
    c.pop("b")
    c.pop("causal", None)  # its own job (causal_across_models)
    c["seed"] = 0
    return c


def suite_member_hook_variant(suite, label):
    """(hook, variant id) of one member of a suite of trained SAEs: along ``axis: hook``
    members are hooks of the suite's variant, otherwise variants at the suite's hook."""
    return (label, suite["variant"]) if suite["axis"] == "hook" else (suite["hook"], label)


def uses_gpu(device):
    """Whether jobs that can use a GPU get one: ``device: cuda``, or ``auto`` where torch sees one."""
    if device == "cuda":
        return True
    if device == "cpu" or not gpu_driver_present():
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def rule_name(prefix, exp):
    """Name of the rule ``prefix`` generated for one experiment (e.g. ``train_saes_<exp>``)."""
    return f"{prefix}_{exp.replace('-', '_')}"


def role_of(null):
    """The artifact role (saesim.workflow.layout.ROLES) of a ``null`` argument: False (the real
    SAEs), True (the trained Gaussian null) or a role name (``"randmodel"``: the random-weights model)."""
    if isinstance(null, str):
        if null not in layout.ROLES:
            raise ValueError(f"artifact role {null!r} is not one of {', '.join(layout.ROLES)}")
        return null
    return "null" if null else "real"


#: the config block whose ``seeds`` each role's SAEs use
_SEEDS_BLOCK = {"real": "sae", "null": "null", "randmodel": "model_null"}


# ---- the plan of one validated config ------------------------------------------------


class Plan:
    """Every DAG fact of one validated config, by experiment name (``exp`` below is a name) or
    from a job's wildcards (methods taking ``wildcards``, used as input functions).

    Built once per workflow (``workflow/rules/common.smk``: ``plan = Plan(config)``); building
    it expands the imported SAEs (saesim.workflow.suite_runs.expand_imported), which raises SaesimError
    naming the key. :meth:`check` runs the checks that need the whole plan.
    """

    def __init__(self, config):
        self.config = config
        self.experiments = config["experiments"]
        self.comparisons = config.get("comparisons", {})
        self.suites = config.get("suites", {})
        self.device = config["device"]
        self.threads = config["threads_per_job"]
        #: GPUs a job that can use one asks for (resource ``gpu``)
        self.gpu = 1 if uses_gpu(self.device) else 0
        #: the rules' resource functions: ``plan.cost.mem_mb(rule)``, ``plan.cost.runtime(rule)``
        self.cost = RuleCosts(self)
        self._model_nulls = {}
        #: imported experiment -> label -> its SAE (saesim.workflow.suite_runs.expand_imported)
        self.imported = {
            name: {item["label"]: item for item in expand_imported(e["source"]["saes"], f"experiments.{name}.source.saes")}
            for name, e in self.experiments.items()
            if is_imported(e)
        }

    # ---- experiments

    def experiments_where(self, **query):
        """Wildcard constraint of the experiments whose source kind has ``field=value`` (saesim.sources.kinds)."""
        kinds = source_kinds.kinds(**query)
        return names_regex(n for n, e in self.experiments.items() if kind(e) in kinds)

    def experiments_with(self, block):
        """Wildcard constraint of the experiments with an enabled ``convergence`` or ``seed_modes`` block."""
        has = {"convergence": has_convergence, "seed_modes": has_seed_modes}[block]
        return names_regex(n for n, e in self.experiments.items() if has(e))

    def trained(self):
        """The experiments that train their SAEs (not imported), in config order."""
        return [n for n, e in self.experiments.items() if not is_imported(e)]

    def source_kind(self, exp):
        return source_kinds.of(self.experiments[exp])

    def is_imported(self, exp):
        return is_imported(self.experiments[exp])

    def has_fourier(self, exp):
        return has_fourier(self.experiments[exp])

    def hooks(self, exp):
        return hooks(self.experiments[exp])

    def variants(self, exp):
        return variants(self.experiments[exp])

    def hook_variants(self, exp, null=False):
        """(hook, variant id) of an experiment's SAEs; for the random-weights model
        (``null="randmodel"``) those its model_null block chooses."""
        if role_of(null) == "randmodel":
            target = self.model_null(exp)
            return list(target.hook_variants) if target is not None else []
        return hook_variants(self.experiments[exp])

    def seeds(self, exp, null=False):
        """Seed labels of an experiment's SAEs, or of its null's (``null``: True, or a role, see role_of)."""
        role = role_of(null)
        if role == "randmodel":
            target = self.model_null(exp)
            return target.seeds if target is not None else []
        return self.experiments[exp][_SEEDS_BLOCK[role]]["seeds"]

    def seed_pairs(self, exp, null=False):
        return seed_pairs(self.seeds(exp, null))

    def null_enabled(self, exp):
        return null_enabled(self.experiments[exp])

    def roles(self, exp):
        """``False`` (the real SAEs), then ``True`` where the experiment trains a null."""
        return (False, True) if self.null_enabled(exp) else (False,)

    def model_null(self, exp):
        """The experiment's random-weights model null (saesim.workflow.config.ModelNull), or None."""
        if exp not in self._model_nulls:  # asked for by many input functions: resolve once
            self._model_nulls[exp] = model_null(self.experiments[exp], f"experiments.{exp}.model_null")
        return self._model_nulls[exp]

    def randmodel_enabled(self, exp):
        return not is_imported(self.experiments[exp]) and self.model_null(exp) is not None

    def role_enabled(self, exp, null):
        """Whether the experiment has SAEs of a role: the real ones always, the null's and the
        random model's where configured."""
        role = role_of(null)
        if role == "null":
            return self.null_enabled(exp)
        if role == "randmodel":
            return self.randmodel_enabled(exp)
        return True

    def training_roles(self, exp):
        """Every role whose SAEs the experiment trains: real, then the null's and the random model's where configured."""
        return [r for r in layout.ROLES if self.role_enabled(exp, r)]

    def randmodel_hooks(self, exp):
        """The hooks the random model's stores are extracted at (none without a model_null block)."""
        target = self.model_null(exp)
        return list(target.hooks) if target is not None else []

    def randmodel_params(self, exp):
        """Params of the random model's extraction job: the ModelNull block as plain data, the
        source, store settings and the device."""
        target = self.model_null(exp)
        return {
            "model_null": {"seed": target.seed, "keep_embeddings": target.keep_embeddings},
            "hooks": list(target.hooks),
            "source": self.experiments[exp]["source"],
            "store": self.experiments[exp]["store"],
            "family": self.source_kind(exp).store_rule,
            "device": self.device,
        }

    def randmodel_inputs(self, exp):
        """The random model's extraction inputs: a language model's corpus; for the modular
        model, the trained model only when its embeddings are kept (its config is in the params)."""
        if self.source_kind(exp).store_rule == "language":
            return {"corpus": layout.path("corpus", ArtifactId(exp))}
        if self.model_null(exp).keep_embeddings:
            return {"model": layout.path("model", ArtifactId(exp))}
        return {}

    def store_input(self, null):
        """An input function: the store of a job's ``exp`` and ``hook`` wildcards, for a role."""
        return lambda w: self.store(w.exp, w.hook, null)

    def row_exclusions(self, exp):
        """The rows SAE training leaves out (for moments streamed from the store itself)."""
        sae = self.experiments[exp]["sae"]
        return {"exclude_positions": list(sae.get("exclude_positions", [])), "exclude_norm_above": sae.get("exclude_norm_above")}

    def sae_spec(self, exp, variant, seed, experiment=None):
        """Keyword arguments of saesim.saes.training.SAESpec for one SAE (``experiment``: another
        version of the experiment's config, e.g. under another seed mode)."""
        return sae_spec(experiment or self.experiments[exp], variant, seed, self.threads, self.device)

    def modular_model_config(self, exp):
        return modular_model_config(self.experiments[exp], self.device)

    def true_l0(self, exp):
        return expected_l0(self.experiments[exp]["source"])

    # ---- paths of one artifact

    def store(self, exp, hook, null=False):
        return layout.path("store", ArtifactId(exp, hook, role=role_of(null)))

    def sae(self, exp, hook, variant, seed, null=False):
        """An SAE folder; the null's mirror the real ones under results/{exp}/null/."""
        return layout.path("sae", ArtifactId(exp, hook, variant, (seed,), role_of(null)))

    def side_dir(self, kind, exp, hook, variant, seed, null=False):
        """An SAE's folder of layout kind ``kind`` (resume checkpoints, trained SAEs kept), outside results/{exp}."""
        return layout.path(kind, ArtifactId(exp, hook, variant, (seed,), role_of(null)))

    def sae_identity(self, exp, hook, variant, seed, null=False):
        return ArtifactId(exp, hook, variant, (seed,), role_of(null)).to_dict()

    def moments_source(self, exp, hook, null=False):
        """Where the store's mean and covariance come from (saesim.similarity.geometry.load_moments): the null
        store, which keeps them as fitted in its one streaming pass; else the store itself. The random
        model's (``null="randmodel"``): its own store, a distribution of its own."""
        if role_of(null) == "randmodel":
            return self.store(exp, hook, "randmodel")
        return self.store(exp, hook, null=self.null_enabled(exp))

    def baseline(self, exp, hook, variant):
        """The random-decoder baseline file of a variant's shape (rule decoder_baseline)."""
        return layout.path("baseline", ArtifactId(exp, hook), width=self.variants(exp)[variant].width)

    # ---- every artifact of a kind, in target order

    def saes(self, exp, null=False):
        """Every SAE folder of an experiment (or of its null or random model: none without one), hooks first."""
        if not self.role_enabled(exp, null):
            return []
        return [self.sae(exp, h, v, s, null) for h, v in self.hook_variants(exp, null) for s in self.seeds(exp, null)]

    def sae_keys(self, exp):
        """``hook/variant/seed<s>`` of every SAE of an experiment, in the order of :meth:`saes`."""
        return [layout.sae_key(ArtifactId(exp, h, v, (s,))) for h, v in self.hook_variants(exp) for s in self.seeds(exp)]

    def pair_files(self, exp, null=False):
        if not self.role_enabled(exp, null):
            return []
        role = role_of(null)
        return [
            layout.path("pair", ArtifactId(exp, h, v, (a, b), role))
            for h, v in self.hook_variants(exp, null)
            for a, b in self.seed_pairs(exp, null)
        ]

    def baseline_files(self, exp):
        widths = baseline_widths(self.experiments[exp])
        return [layout.path("baseline", ArtifactId(exp, h), width=w) for h in self.hooks(exp) for w in widths[h]]

    def _per_sae_files(self, kind, exp, null):
        if null and not self.null_enabled(exp):
            return []
        return [layout.path(kind, ArtifactId(exp, h, v, (s,), role_of(null))) for h, v in self.hook_variants(exp) for s in self.seeds(exp, null)]

    def ground_truth_files(self, exp, null=False):
        return self._per_sae_files("ground_truth", exp, null) if has_ground_truth(self.experiments[exp]) else []

    def fourier_files(self, exp, null=False):
        """Fourier overlap of every SAE (the null's: only where the stores carry key frequencies)."""
        if null and not has_fourier(self.experiments[exp]):
            return []
        return self._per_sae_files("fourier", exp, null)

    def downstream_files(self, exp):
        """The downstream-loss JSON of a language-model experiment (none for other kinds)."""
        return [layout.path("downstream", ArtifactId(exp))] if is_language(self.experiments[exp]) else []

    def figure_files(self, exp):
        """The figures an experiment draws (FIGURES), PDF and PNG."""
        return [
            layout.path("figure", ArtifactId(exp), name=name, ext=ext)
            for name in figure_names(self.experiments[exp])
            for ext in ("pdf", "png")
        ]

    def causal_files(self, exp):
        """Causal equivalence (geometry.smk): seeds 0-1 of each variant listed under causal:, per hook."""
        c = self.experiments[exp].get("causal") or {}
        if not c.get("variants"):
            return []
        e = self.experiments[exp]
        if not (is_modular(e) or is_language(e)) or is_imported(e) or len(self.seeds(exp)) < 2:
            raise SaesimError(f"experiments.{exp}.causal: needs a modular-addition or language-model experiment "
                              "that trains SAEs with at least two sae.seeds")
        known = {v for _, v in self.hook_variants(exp)}
        unknown = [v for v in c["variants"] if v not in known]
        if unknown:
            raise SaesimError(f"experiments.{exp}.causal.variants: {unknown} not among {sorted(known)}")
        a, b = self.seeds(exp)[:2]
        return [
            layout.path("causal", ArtifactId(exp, h, v, (a, b)))
            for h, v in self.hook_variants(exp)
            if v in c["variants"] and (not c.get("hooks") or h in c["hooks"])
        ]

    def causal_inputs(self, wildcards):
        """A causal-equivalence job's inputs: SAEs ``a`` and ``b``, and the model (modular: its
        folder) or what the held-out contexts and the norm cut need (language: corpus and store)."""
        w = wildcards
        out = {"a": self.sae(w.exp, w.hook, w.variant, w.a), "b": self.sae(w.exp, w.hook, w.variant, w.b)}
        if is_language(self.experiments[w.exp]):
            return {**out, "corpus": layout.path("corpus", ArtifactId(w.exp)), "store": self.store(w.exp, w.hook)}
        return {**out, "model": layout.path("model", ArtifactId(w.exp))}

    def causal_options(self, exp):
        """The causal job's params: the config block, the source kind and, for a language model,
        its source block, the training's row exclusions and the device."""
        e = self.experiments[exp]
        out = {**e["causal"], "kind": "language" if is_language(e) else "modular"}
        if is_language(e):
            out.update(source=e["source"], device=self.device, **self.row_exclusions(exp))
        return out

    def downstream_inputs(self, wildcards):
        exp = wildcards.exp
        return {
            "corpus": layout.path("corpus", ArtifactId(exp)),
            "stores": [self.store(exp, h) for h in self.hooks(exp)],
            "saes": self.saes(exp),
        }

    def truth_heatmap_saes(self, exp):
        """The first seed's SAE of each panel (truth_heatmap_variants)."""
        picked = truth_heatmap_variants(self.experiments[exp], f"experiments.{exp}")
        return [self.sae(exp, self.hooks(exp)[0], v, self.seeds(exp)[0]) for v in picked]

    # ---- training

    def snapshot_fractions(self, exp, hook, variant):
        """Fractions of training (below 1) at which the training job keeps snapshots of an SAE:
        those of the experiment's convergence and seed_modes blocks for their variant and hook,
        else none."""
        if is_imported(self.experiments[exp]):
            return []
        keep = set()
        for block in ("convergence", "seed_modes"):
            target = snapshot_target(self.experiments[exp], block)
            if target is not None and (target.variant, target.hook) == (variant, hook):
                keep |= {f for f in target.fractions if f < 1}
        return sorted(keep)

    def training_params(self, saes, null):
        """Params of a job that trains the SAEs ``saes`` ((exp, hook, variant, seed) each), one
        entry per SAE in the order of its outputs: spec and store; trainer checkpoints for
        resuming a killed job and the finished SAEs kept for reuse (outside the outputs, which
        Snakemake deletes before a job starts); identity; training snapshots (the convergence
        and seed_modes variants only)."""
        return {
            "specs": [self.sae_spec(e, v, s) for e, h, v, s in saes],
            "stores": [self.store(e, h, null) for e, h, v, s in saes],
            "resume_dirs": [self.side_dir("resume", e, h, v, s, null) for e, h, v, s in saes],
            "trained_caches": [self.side_dir("trained_cache", e, h, v, s, null) for e, h, v, s in saes],
            "identities": [self.sae_identity(e, h, v, s, null) for e, h, v, s in saes],
            # the random model's SAEs keep none (no trajectory reads them)
            "snapshots": [[] if role_of(null) == "randmodel" else self.snapshot_fractions(e, h, v) for e, h, v, s in saes],
        }

    def experiment_training_saes(self, exp, null):
        """(exp, hook, variant, seed) of every SAE of an experiment (or of its null), hooks first:
        what its one training job trains (sae.train_jobs: experiment)."""
        return [(exp, h, v, s) for h, v in self.hook_variants(exp, null) for s in self.seeds(exp, null)]

    def variant_training_params(self, null):
        """Input functions of the params of the job that trains every seed of one variant at one
        hook (wildcards exp, hook, variant): one per key of :meth:`training_params`."""

        def saes(w):
            return [(w.exp, w.hook, w.variant, s) for s in self.seeds(w.exp, null)]

        def param(key):
            return lambda w: self.training_params(saes(w), null)[key]

        return {key: param(key) for key in ("specs", "stores", "resume_dirs", "trained_caches", "identities", "snapshots")}

    # ---- convergence and seed modes

    def snapshot_target(self, exp, block):
        """The experiment's saesim.workflow.config.SnapshotTarget of ``convergence`` or ``seed_modes``."""
        return snapshot_target(self.experiments[exp], block)

    def target_saes(self, exp, block, null=False):
        """The SAEs (one per seed) of the variant a block measures; the null's only where trained."""
        t = self.snapshot_target(exp, block)
        if null and not self.null_enabled(exp):
            return []
        return [self.sae(exp, t.hook, t.variant, s, null) for s in self.seeds(exp, null)]

    def target_baseline(self, exp, block):
        t = self.snapshot_target(exp, block)
        return self.baseline(exp, t.hook, t.variant)

    def convergence_null_seeds(self, exp):
        """The null seeds whose training trajectory the convergence job reads (none without a null)."""
        return self.seeds(exp, null=True) if self.null_enabled(exp) else []

    def convergence_null_store(self, exp):
        return [self.store(exp, self.snapshot_target(exp, "convergence").hook, null=True)] if self.null_enabled(exp) else []

    def convergence_specs(self, exp, null=False):
        """SAESpec keyword arguments of the convergence variant's SAEs, as the training rule builds them
        (the null's: none without a null)."""
        variant = self.snapshot_target(exp, "convergence").variant
        seeds = self.convergence_null_seeds(exp) if null else self.seeds(exp)
        return [self.sae_spec(exp, variant, s) for s in seeds]

    def own_seed_mode(self, exp):
        return self.experiments[exp]["sae"].get("seed_mode", "both")

    def seed_modes_specs(self, exp):
        """{mode: [SAESpec keyword arguments per seed]} of the seed-mode comparison."""
        t = self.snapshot_target(exp, "seed_modes")
        out = {}
        for mode in t.modes:
            e = copy.deepcopy(self.experiments[exp])
            e["sae"]["seed_mode"] = mode
            out[mode] = [self.sae_spec(exp, t.variant, s, experiment=e) for s in self.seeds(exp)]
        return out

    def seed_modes_published(self, exp):
        """The published SAEs serve the experiment's own seed mode (when compared); [] otherwise."""
        if self.own_seed_mode(exp) not in self.snapshot_target(exp, "seed_modes").modes:
            return []
        return self.target_saes(exp, "seed_modes")

    # ---- comparisons across experiments

    def comparison_side(self, cmp, side):
        """(experiment, variant, seed, hooks) of one side of a comparison."""
        ref = self.comparisons[cmp][side]
        exp = ref["experiment"]
        trained = [h for h, v in self.hook_variants(exp) if v == ref["variant"]]
        return exp, ref["variant"], ref.get("seed", self.seeds(exp)[0]), ref.get("hooks", trained)

    def comparison_inputs(self, wildcards):
        out = {}
        for side, hook in (("a", wildcards.hook_a), ("b", wildcards.hook_b)):
            exp, variant, seed, _ = self.comparison_side(wildcards.cmp, side)
            out[f"store_{side}"] = self.store(exp, hook)
            out[f"sae_{side}"] = self.sae(exp, hook, variant, seed)
        for side in ("a", "b"):
            exp = self.comparison_side(wildcards.cmp, side)[0]
            if is_language(self.experiments[exp]):
                out[f"junk_{side}"] = layout.path("junk_tokens", ArtifactId(exp))
        return out

    def comparison_options(self, cmp):
        return comparison_options(self.comparisons[cmp])

    def comparison_exclusions(self, cmp):
        """Rows each side's SAEs were trained without (transfer uses the rows both may use)."""
        return {side: self.row_exclusions(self.comparison_side(cmp, side)[0]) for side in ("a", "b")}

    def comparison_files(self, cmp):
        hooks_a = self.comparison_side(cmp, "a")[3]
        hooks_b = self.comparison_side(cmp, "b")[3]
        return [layout.path("comparison", cmp=cmp, hook_a=ha, hook_b=hb, ext="json") for ha in hooks_a for hb in hooks_b]

    def causal_across_files(self, cmp):
        """Causal equivalence across the two models of a comparison (geometry.smk), when its
        ``causal:`` block is given (checked by saesim.workflow.config: modular, the same p)."""
        return [layout.path("comparison_causal", cmp=cmp)] if self.comparisons[cmp].get("causal") else []

    def causal_across_inputs(self, wildcards):
        """The job's two models and the two SAEs (each side's variant and seed at its causal hook)."""
        hooks = self.comparisons[wildcards.cmp]["causal"]["hooks"]
        out = {}
        for side, hook in zip(("a", "b"), hooks):
            exp, variant, seed, _ = self.comparison_side(wildcards.cmp, side)
            out[f"model_{side}"] = layout.path("model", ArtifactId(exp))
            out[f"sae_{side}"] = self.sae(exp, hook, variant, seed)
        return out

    def causal_across_options(self, cmp):
        return dict(self.comparisons[cmp]["causal"])

    # ---- imported SAEs and suites

    def imported_identity_file(self, exp, label):
        return layout.path("imported", ArtifactId(exp), label=label)

    def imported_inputs(self, wildcards):
        src = self.experiments[wildcards.exp]["source"]
        out = {"files": self.imported[wildcards.exp][wildcards.label]["files"]}
        if src.get("store"):
            out["store"] = src["store"]
        return out

    def imported_files(self, exp):
        return [self.imported_identity_file(exp, label) for label in self.imported[exp]] + [
            layout.path("table", ArtifactId(exp), name="imported_saes.csv")
        ]

    def suite_members(self, suite):
        """Member label -> {spec, info (file the cell job reads), kind, and what a trained member needs}."""
        s = self.suites[suite]
        exp = s["experiment"]
        if is_imported(self.experiments[exp]):
            imported = self.imported[exp]
            labels = s.get("members") or list(imported)
            for m in labels:
                if m not in imported:
                    raise SaesimError(f"suites.{suite}.members: {m!r} is not an SAE of {exp}; labels: {', '.join(imported)}")
            if len(labels) < 2:
                raise SaesimError(f"suites.{suite}.members: a suite needs at least two SAEs")
            return {m: {"kind": "imported", "spec": imported[m]["spec"], "info": self.imported_identity_file(exp, m)} for m in labels}
        out = {}
        for m in s["members"]:
            hook, variant = suite_member_hook_variant(s, m)
            d = self.sae(exp, hook, variant, s["seed"])
            out[m] = {"kind": "trained", "spec": d, "info": d, "hook": hook, "variant": variant, "seed": s["seed"]}
        return out

    def suite_cell_files(self, suite):
        return [layout.path("suite_cell", suite=suite, member_a=a, member_b=b) for a, b in pairs(self.suite_members(suite))]

    def suite_cell_inputs(self, wildcards):
        members = self.suite_members(wildcards.suite)
        return {"a": members[wildcards.a]["info"], "b": members[wildcards.b]["info"]}

    def suite_cell_params(self, wildcards):
        """The cell job's two members (without the file it reads) and the suite's comparison options."""
        s = self.suites[wildcards.suite]
        members = self.suite_members(wildcards.suite)
        sides = {
            side: {k: v for k, v in members[getattr(wildcards, side)].items() if k != "info"} | {"label": getattr(wildcards, side)}
            for side in ("a", "b")
        }
        options = dict(
            suite=wildcards.suite,
            axis=s["axis"],
            cosine=s["cosine"],
            thresholds=list(s["thresholds"]),
            top_m=s["top_m"],
            memory_budget_mb=self.config["memory_budget_mb"],
            baseline_draws=self.config["baseline_draws"],
            seed=0,
        )
        return sides | {"options": options}

    def suite_files(self, suite):
        exts = ("pdf", "png")
        out = [layout.path("suite_matrix", suite=suite)]
        out += [layout.path("suite_figure", suite=suite, name="matrix", ext=ext) for ext in exts]
        if self.suites[suite]["axis"] == "width":
            out += [layout.path("suite_figure", suite=suite, name="splitting", ext=ext) for ext in exts]
        return out

    # ---- per-latent stability and feature pages

    def per_latent_enabled(self, exp):
        return self.config["per_latent"]["enabled"] and not is_imported(self.experiments[exp]) and len(self.seeds(exp)) >= 2

    def per_latent_saes(self, exp):
        """Every SAE of an experiment the per-latent job reads: real, then null (where it has null pairs)."""
        out = []
        for null in self.roles(exp):
            if null and len(self.seeds(exp, null=True)) < 2:  # one null seed: no null pairs
                continue
            for h, v in self.hook_variants(exp):
                for s in self.seeds(exp, null):
                    out.append({
                        "hook": h, "variant": v, "seed": s, "role": role_of(null),
                        "path": self.sae(exp, h, v, s, null),
                        "store": self.store(exp, h, null),
                        "spec": self.sae_spec(exp, v, s),
                        "identity": self.sae_identity(exp, h, v, s, null),
                        # the real store's coordinate systems, for real and null SAEs alike (as the pair jobs)
                        "moments": self.moments_source(exp, h),
                        "row_exclusions": self.row_exclusions(exp),
                    })
        return out

    def per_latent_files(self, exp):
        """The experiment's per-latent tables and figure (targets of the default run)."""
        if not self.per_latent_enabled(exp):
            return []
        return [
            layout.path("table", ArtifactId(exp), name="per_latent.csv"),
            *(layout.path("figure", ArtifactId(exp), name="per_latent", ext=e) for e in ("pdf", "png")),
        ]

    def feature_pages_enabled(self, exp):
        """Pages for an experiment that trains SAEs: at least two seeds, or a suite cell to show."""
        if not self.config["feature_pages"]["enabled"] or is_imported(self.experiments[exp]):
            return False
        return len(self.seeds(exp)) >= 2 or bool(self.feature_suite_jobs(exp))

    def feature_seed_jobs(self, exp):
        """One page per (hook, variant): its first seed pair."""
        if len(self.seeds(exp)) < 2:
            return []
        a, b = self.seed_pairs(exp)[0]
        return [
            {
                "section": "seed pairs", "exp": exp, "hook": h, "store": self.store(exp, h),
                "sae_a": self.sae(exp, h, v, a), "sae_b": self.sae(exp, h, v, b),
                "name_a": f"seed {a}", "name_b": f"seed {b}",
                "title": f"{exp} / {h} / {v}: seed {a} vs seed {b}",
                "label": f"{h} / {v} / seed{a}-seed{b}",
                "out": layout.path("feature_page", ArtifactId(exp, h, v, (a, b))),
            }
            for h, v in self.hook_variants(exp)
        ]

    def feature_suite_jobs(self, exp):
        """One page per cell of every suite of ``exp``'s trained SAEs whose two members read one store
        (every axis but ``hook``); none when ``feature_pages.suites`` is off."""
        if not self.config["feature_pages"]["suites"] or is_imported(self.experiments[exp]):
            return []
        out = []
        for suite, s in self.suites.items():
            if s["experiment"] != exp or s["axis"] == "hook":
                continue
            members = self.suite_members(suite)
            for ma, mb in pairs(members):
                a, b = members[ma], members[mb]
                out.append({
                    "section": "suite cells", "exp": exp, "hook": a["hook"], "store": self.store(exp, a["hook"]),
                    "sae_a": a["spec"], "sae_b": b["spec"], "name_a": ma, "name_b": mb,
                    "title": f"{exp} / {a['hook']} / suite {suite} ({s['axis']}): {ma} vs {mb}, seed {a['seed']}",
                    "label": f"{suite}: {ma} vs {mb}",
                    "out": layout.path("feature_suite_page", ArtifactId(exp), suite=suite, member_a=ma, member_b=mb),
                })
        return out

    def feature_page_jobs(self, exp):
        """Every page of the experiment's feature-pages job, each ``{"section", "exp", "hook", "store", "sae_a",
        "sae_b", "name_a", "name_b", "title", "label", "out"}``: seed pairs, then suite cells."""
        return self.feature_seed_jobs(exp) + self.feature_suite_jobs(exp)

    def feature_page_files(self, exp):
        if not self.feature_pages_enabled(exp):
            return []
        return [layout.path("feature_index", ArtifactId(exp))] + [j["out"] for j in self.feature_page_jobs(exp)]

    def feature_page_options(self, exp):
        """The feature-pages job's options: the config block, the source kind and the training's row exclusions."""
        lm = is_language(self.experiments[exp])
        return {
            **{k: v for k, v in self.config["feature_pages"].items() if k not in ("enabled", "suites")},
            "kind": "language" if lm else self.source_kind(exp).name,  # plain data: params are unpickled before the script puts its src on sys.path
            **self.row_exclusions(exp),
        }

    # ---- the default target and start-up checks

    def all_targets(self):
        """Every file of the default run (rule all)."""
        out = []
        for suite in self.suites:
            out += self.suite_files(suite)
        for cmp in self.comparisons:
            out += [
                layout.path("comparison_table", cmp=cmp),
                layout.path("transfer_table", cmp=cmp),
                layout.path("comparison_figure", cmp=cmp, name="paired_vs_random", ext="pdf"),
                layout.path("comparison_figure", cmp=cmp, name="layer_heatmap", ext="pdf"),
            ]
            out += self.causal_across_files(cmp)
        for exp, e in self.experiments.items():
            if is_imported(e):
                out += self.imported_files(exp)
                continue
            out += [layout.path("table", ArtifactId(exp), name=n) for n in ("stability.csv", "summary.md")]
            if has_fourier(e):
                out.append(layout.path("table", ArtifactId(exp), name="fourier.csv"))
            out += self.figure_files(exp)
            out += self.per_latent_files(exp)
            out += self.feature_page_files(exp)
        out += [layout.path("summary", ext=ext) for ext in ("csv", "md", "html")]
        for exp in self.trained():
            out += self.causal_files(exp)
        # agreement per coordinate system (geometry.smk)
        out += [layout.path("summary_figure", name="coordinate_spaces", ext=ext) for ext in ("pdf", "png")]
        out.append(layout.path("summary_table", name="coordinate_spaces"))
        return out

    def check(self):
        """Start-up checks, each one SaesimError naming the key or file, not an error inside an
        input function (InputFunctionException) or a later job: every suite's members (and, for
        imported SAEs, their common d_in); no store replaced by a broken symlink (it would count
        as present); every causal block; the panels of every latent x true-feature heatmap."""
        for suite, s in self.suites.items():
            members = self.suite_members(suite)
            if is_imported(self.experiments[s["experiment"]]):
                check_same_d({m: v["spec"] for m, v in members.items()}, f"suites.{suite}")
        stores = [self.store(exp, h, null) for exp in self.trained() for null in self.roles(exp) for h in self.hooks(exp)]
        stores += [self.store(exp, h, "randmodel") for exp in self.trained() for h in self.randmodel_hooks(exp)]
        check_no_broken_links(stores, "activation store")
        for exp in self.trained():
            self.causal_files(exp)
            if "latent_vs_truth" in figure_names(self.experiments[exp]):
                self.truth_heatmap_saes(exp)


def job_identity(role="real"):
    """A rule's ``identity`` param: the identity of its job's output (saesim.workflow.layout.ArtifactId
    from the wildcards), which the script writes into the artifact."""
    return lambda wildcards: ArtifactId.from_wildcards(wildcards, role).to_dict()
