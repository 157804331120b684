"""Concept scores from a sparse autoencoder's codes.

``SAEConceptScorer`` makes the codes of chosen SAE latents the concept scores of a
:class:`~cbm.model.ConceptBottleneckModel` (standardised like the cosine scorer, so
head weights compare across concepts); :func:`sae_bottleneck` builds such a model
from a fitted SAE and the names of its latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from cbm.concepts.sae import SparseAutoencoder
from cbm.exceptions import ArtefactError, ConfigurationError
from cbm.io import expect_array

if TYPE_CHECKING:
    from cbm.concepts.naming import LatentNames
    from cbm.heads.sparse import SparseLinearHead
    from cbm.model import ConceptBottleneckModel

_SAE_ARRAYS = ("W_enc", "b_enc", "W_dec", "b_pre")


class SAEConceptScorer(TransformerMixin, BaseEstimator):
    """Score concepts by the (standardised) codes of chosen SAE latents.

    Parameters
    ----------
    sae
        A fitted :class:`SparseAutoencoder`.
    latents
        Latent indices that become concepts, in order (default: all).
    concept_names
        One name per chosen latent.
    standardise
        Standardise each code with its training mean and standard deviation.
    """

    def __init__(
        self,
        sae: SparseAutoencoder,
        latents: Sequence[int] | None = None,
        concept_names: Sequence[str] | None = None,
        standardise: bool = True,
    ) -> None:
        self.sae = sae
        self.latents = latents
        self.concept_names = concept_names
        self.standardise = standardise

    def _latents(self) -> np.ndarray:
        check_is_fitted(self.sae, "W_dec_")
        m = self.sae.n_latents
        idx = np.arange(m) if self.latents is None else np.asarray(self.latents, dtype=int)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= m:
            raise ConfigurationError(f"latents must be a non-empty list of indices in 0..{m - 1}")
        if self.concept_names is not None and len(self.concept_names) != idx.size:
            raise ConfigurationError(
                f"{idx.size} latents but {len(self.concept_names)} concept names"
            )
        return idx

    def _codes(self, X: np.ndarray) -> np.ndarray:
        return self.sae.transform(X)[:, self.latents_].astype(np.float64)

    def fit(self, X: np.ndarray, y: object = None) -> SAEConceptScorer:
        """Learn per-concept standardisation from training embeddings ``X``."""
        self.latents_ = self._latents()
        self.n_features_in_ = self.sae.n_features_in_
        codes = self._codes(X)
        self.mean_ = codes.mean(0) if self.standardise else np.zeros(codes.shape[1])
        std = codes.std(0) if self.standardise else np.ones(codes.shape[1])
        # A latent that never fires on the training set scores 0 everywhere.
        self.scale_ = np.where(std > 1e-8, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Concept scores ``(n_samples, n_concepts)``."""
        check_is_fitted(self, "mean_")
        return ((self._codes(X) - self.mean_) / self.scale_).astype(np.float32)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "latents_")
        if self.concept_names is None:
            return np.array([f"latent{j}" for j in self.latents_], dtype=object)
        return np.asarray(list(self.concept_names), dtype=object)

    # -- persistence inside a ConceptBottleneckModel directory ---------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(``config.json`` entry, arrays) that :meth:`from_state` restores."""
        check_is_fitted(self, "mean_")
        sae = self.sae
        config = {
            "type": "SAEConceptScorer",
            "latents": [int(j) for j in self.latents_],
            "standardise": self.standardise,
            "sae_params": sae.get_params(),
            "sae_n_features_in": int(sae.n_features_in_),
            "sae_report": sae.report_,
        }
        arrays = {f"sae_{p}": getattr(sae, p + "_") for p in _SAE_ARRAYS}
        arrays["sae_input_scale"] = np.asarray([sae.input_scale_], np.float32)
        return config, arrays

    @classmethod
    def from_state(
        cls,
        config: dict[str, Any],
        arrays: dict[str, np.ndarray],
        path: Path,
        mean: np.ndarray,
        scale: np.ndarray,
        concept_names: Sequence[str],
    ) -> SAEConceptScorer:
        try:
            params = dict(config["sae_params"])
            d = int(config["sae_n_features_in"])
            latents = [int(j) for j in config["latents"]]
        except (KeyError, TypeError, ValueError) as err:
            raise ArtefactError(f"{path}: malformed SAE scorer entry ({err})") from err
        sae = SparseAutoencoder(**params)
        sae._validate_params()
        m = sae.n_latents
        shapes = {"W_enc": (d, m), "b_enc": (m,), "W_dec": (m, d), "b_pre": (d,)}
        for p in _SAE_ARRAYS:
            setattr(sae, p + "_", expect_array(arrays, f"sae_{p}", shapes[p], path))
        sae.input_scale_ = np.float32(expect_array(arrays, "sae_input_scale", (1,), path)[0])
        sae.n_features_in_ = d
        sae.report_ = dict(config.get("sae_report") or {})
        scorer = cls(sae, latents, list(concept_names), bool(config.get("standardise", True)))
        scorer.latents_ = scorer._latents()
        scorer.n_features_in_ = d
        scorer.mean_, scorer.scale_ = mean, scale
        return scorer


def sae_bottleneck(
    sae: SparseAutoencoder,
    names: LatentNames,
    backbone: dict[str, Any],
    class_names: Sequence[str],
    head: SparseLinearHead | None = None,
    latents: Sequence[int] | None = None,
    bank_name: str = "sae-latents",
) -> ConceptBottleneckModel:
    """An unfitted CBM whose concepts are SAE latents named by ``names``.

    ``latents`` picks the latents to use (default: every latent that is not weakly
    named). The model's concept embeddings are the latents' decoder directions.
    """
    from cbm.model import ConceptBottleneckModel

    if latents is None:
        latents = [int(j) for j in names.latents[~names.weak]] or [int(j) for j in names.latents]
    bank = names.to_bank(bank_name, latents)
    scorer = SAEConceptScorer(sae, list(latents), bank.concepts)
    return ConceptBottleneckModel(
        bank,
        sae.decoder_directions_[list(latents)],
        backbone,
        tuple(class_names),
        head,
        scorer=scorer,
    )
