"""What the latents are and do: ground-truth recovery, Fourier features, downstream loss,
co-activation, training trajectories, seed modes, per-latent stability, latent statistics and
causal equivalence.
"""
