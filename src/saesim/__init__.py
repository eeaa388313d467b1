"""saesim: do sparse autoencoders learn the same features?

The package keeps heavy imports (torch, sae-lens) out of its top level so that
light jobs (comparisons, tables) start quickly.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # the notebook API (saesim.compare, saesim.load_results), imported on first use to keep `import saesim` light
    # (importlib rather than an import statement: saesim.codehash follows import statements, and every rule
    # script imports this package; the API and the CLI behind it are no rule's code)
    if name in ("compare", "load_results", "Comparison"):
        import importlib

        return getattr(importlib.import_module("saesim.api"), name)
    raise AttributeError(f"module 'saesim' has no attribute {name!r}")
