"""cbm: concept bottleneck models on CLIP embeddings."""

__version__ = "0.1.0"
