"""saesim: do sparse autoencoders learn the same features?

The package keeps heavy imports (torch, sae-lens) out of its top level so that
light jobs (comparisons, tables) start quickly.
"""

__version__ = "0.1.0"
