"""saesim: do sparse autoencoders learn the same features?

The package reads in pipeline order, one subpackage a stage:

* ``sources``: where activations come from (synthetic data with ground truth, the
  modular-addition transformer, pretrained language models and their corpus, extraction,
  the Gaussian null's data, the source-kind registry);
* ``stores``: HDF5 activation stores (chunked writing and reading, row selection);
* ``saes``: sparse autoencoders (architecture registry, training with sae-lens, evaluation,
  loading weights of every supported format);
* ``similarity``: comparing SAEs (decoder geometry with its chance levels, suites across
  variants, shared-initialisation detection, coordinate spaces, the JSON contract, and
  ``similarity.universality``: activations across models and layers, transfer);
* ``analysis``: what latents are and do (ground truth, Fourier, downstream loss,
  co-activation, training trajectories, seed modes, per-latent stability, causal equivalence);
* ``report``: tables, figures and feature pages;
* ``registry``: the metric and column registries every reported number comes from;
* ``workflow``: what the Snakemake rules call (config validation, planning, resources, artifact
  layout, code hashes, the rule-script runner, GPU allocation, imported suites).

At the top level: ``cli`` (the ``saesim`` command), ``api`` (``saesim.compare``,
``saesim.load_results``), ``errors``, ``hashes`` (the one file sha256) and ``docsgen``. The package keeps heavy imports (torch,
sae-lens) out of its top level so that light jobs (comparisons, tables) start quickly.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # the notebook API (saesim.compare, saesim.load_results), imported on first use to keep `import saesim` light
    # (importlib rather than an import statement: saesim.workflow.codehash follows import statements, and every rule
    # script imports this package; the API and the CLI behind it are no rule's code)
    if name in ("compare", "load_results", "Comparison"):
        import importlib

        return getattr(importlib.import_module("saesim.api"), name)
    raise AttributeError(f"module 'saesim' has no attribute {name!r}")
