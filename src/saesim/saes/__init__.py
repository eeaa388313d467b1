"""Sparse autoencoders: the architecture registry, training with sae-lens (check, resume, fit,
publish), evaluation, and loading SAE weights of every supported format.
"""
