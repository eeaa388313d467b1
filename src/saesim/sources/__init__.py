"""Where activations come from: synthetic data with ground truth (sae_lens.synthetic), the
modular-addition transformer, pretrained language models and their corpus, activation
extraction, the Gaussian null's data, the random-weights model null's re-initialised models, and
the source-kind registry.
"""
