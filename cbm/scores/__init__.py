"""Concept scores computed from embeddings."""

from cbm.scores.cosine import CosineConceptScorer, random_directions

__all__ = ["CosineConceptScorer", "random_directions"]
