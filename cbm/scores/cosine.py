"""Concept scores as standardised cosine similarity to concept-text embeddings."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.validation import check_embeddings, unit_rows


class CosineConceptScorer(TransformerMixin, BaseEstimator):
    """Score each concept by the cosine between an image and the concept's text.

    ``fit`` learns each concept's mean and standard deviation of cosine on the training
    images, and ``transform`` returns standardised scores, so a score of +2 reads as
    "two standard deviations more like this concept than the training average".

    Parameters
    ----------
    concept_embeddings
        ``(n_concepts, dim)`` text embeddings of the concepts (any norm).
    concept_names
        One name per concept; ``get_feature_names_out`` returns them.
    standardise
        Standardise with the training statistics (recommended; CLIP cosines of
        different concepts sit on very different baselines).
    """

    def __init__(
        self,
        concept_embeddings: np.ndarray,
        concept_names: tuple[str, ...] | list[str] | None = None,
        standardise: bool = True,
    ) -> None:
        self.concept_embeddings = concept_embeddings
        self.concept_names = concept_names
        self.standardise = standardise

    def _directions(self) -> np.ndarray:
        emb = check_embeddings(self.concept_embeddings, "concept embeddings")
        if self.concept_names is not None and len(self.concept_names) != emb.shape[0]:
            raise ConfigurationError(
                f"{emb.shape[0]} concept embeddings but {len(self.concept_names)} concept names"
            )
        return unit_rows(emb.astype(np.float64), "concept embeddings")

    def _cosine(self, X: np.ndarray) -> np.ndarray:
        directions = self.directions_
        X = check_embeddings(X, "image embeddings", dim=directions.shape[1])
        return unit_rows(X.astype(np.float64), "image embeddings") @ directions.T

    def fit(self, X: np.ndarray, y: object = None) -> CosineConceptScorer:
        """Learn per-concept standardisation from training embeddings ``X``."""
        self.directions_ = self._directions()
        X = check_embeddings(X, "image embeddings", dim=self.directions_.shape[1])
        self.n_features_in_ = X.shape[1]
        cos = self._cosine(X)
        self.mean_ = cos.mean(axis=0) if self.standardise else np.zeros(cos.shape[1])
        std = cos.std(axis=0) if self.standardise else np.ones(cos.shape[1])
        # A concept whose cosine never varies carries no information; dividing by a
        # tiny std would blow float noise up into large scores.
        self.scale_ = np.where(std > 1e-8, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardised concept scores, ``(n_samples, n_concepts)``."""
        check_is_fitted(self, "directions_")
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] != self.n_features_in_:
            raise ValidationError(
                f"image embeddings have dimension {X.shape[1]}, but this scorer was fitted on "
                f"{self.n_features_in_} (concept texts from another backbone?)"
            )
        return ((self._cosine(X) - self.mean_) / self.scale_).astype(np.float32)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "directions_")
        if self.concept_names is None:
            return np.array([f"concept{i}" for i in range(self.directions_.shape[0])], dtype=object)
        return np.asarray(list(self.concept_names), dtype=object)


def random_directions(n_concepts: int, dim: int, seed: int = 0) -> np.ndarray:
    """Random unit directions in embedding space: the random-concept-bank control.

    A head fitted on scores against random directions shows how much of the accuracy
    any ``n_concepts`` projections of the embedding would give, meaningful or not.
    """
    if n_concepts < 1 or dim < 1:
        raise ConfigurationError("random_directions needs n_concepts >= 1 and dim >= 1")
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((n_concepts, dim))
    return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
