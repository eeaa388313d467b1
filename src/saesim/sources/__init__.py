"""Where activations come from: synthetic data with ground truth (sae_lens.synthetic), the
modular-addition transformer, pretrained language models and their corpus, activation
extraction, the Gaussian null's data, and the source-kind registry.
"""
