"""Concept activation vectors (CAVs): concept directions learned from example images.

This is Post-hoc CBM's route for backbones without a text tower (EfficientNet-Lite0,
any ImageNet classifier): for each concept, a linear classifier separates embeddings
of images that show the concept from images that do not, and its unit normal is the
concept's direction. The directions take the place of concept-text embeddings
everywhere (``ConceptBottleneckModel(bank, cav.vectors, ...)``).

A :class:`CAVBank` is saved as a directory with ``config.json`` (the
:class:`~cbm.concepts.bank.ConceptBank` with provenance, backbone identity, fitting
settings, held-out quality per concept) and ``vectors.safetensors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import cbm
from cbm.concepts.bank import ConceptBank
from cbm.exceptions import ArtefactError, ConfigurationError, ValidationError
from cbm.io import (
    SCHEMA_VERSION,
    check_config,
    expect_array,
    read_arrays,
    read_json,
    write_arrays,
    write_json,
)
from cbm.validation import check_embeddings

KIND = "cav_bank"
METHODS = ("logistic", "svm")


@dataclass(frozen=True)
class CAVBank:
    """Concept directions in a backbone's embedding space.

    Attributes
    ----------
    bank
        The concepts, with how they were learned in ``provenance``.
    vectors
        ``(n_concepts, dim)`` unit directions.
    intercepts
        ``(n_concepts,)`` classifier offsets (in units of the unit direction).
    backbone
        Identity of the backbone whose embeddings the directions live in.
    holdout_accuracy
        Per concept, accuracy of its classifier on held-out examples (NaN if none).
    """

    bank: ConceptBank
    vectors: np.ndarray
    intercepts: np.ndarray
    backbone: dict[str, Any] = field(default_factory=dict)
    holdout_accuracy: np.ndarray = field(default_factory=lambda: np.empty(0))

    def save(self, directory: str | Path) -> Path:
        """Write ``vectors.safetensors`` then ``config.json`` (atomically, file by file)."""
        directory = Path(directory)
        write_arrays(
            directory / "vectors.safetensors",
            {"vectors": self.vectors.astype(np.float32), "intercepts": self.intercepts},
        )
        write_json(
            directory / "config.json",
            {
                "kind": KIND,
                "schema_version": SCHEMA_VERSION,
                "cbm_version": cbm.__version__,
                "concept_bank": self.bank.to_dict(),
                "backbone": self.backbone,
                "dim": int(self.vectors.shape[1]),
                "holdout_accuracy": [
                    None if np.isnan(a) else float(a) for a in self.holdout_accuracy
                ],
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CAVBank:
        """Read a directory written by :meth:`save`; nothing is unpickled."""
        directory = Path(directory)
        cfg_path = directory / "config.json"
        cfg = check_config(read_json(cfg_path), KIND, cfg_path)
        bank = ConceptBank.from_dict(cfg["concept_bank"], source=str(cfg_path))
        arrays = read_arrays(directory / "vectors.safetensors")
        k, dim = len(bank), int(cfg.get("dim", -1))
        vectors = expect_array(arrays, "vectors", (k, dim), directory)
        intercepts = expect_array(arrays, "intercepts", (k,), directory)
        acc = np.asarray(
            [np.nan if a is None else a for a in cfg.get("holdout_accuracy") or [None] * k],
            np.float64,
        )
        if acc.shape != (k,):
            raise ArtefactError(f"{cfg_path}: holdout_accuracy must list {k} values")
        return cls(bank, vectors, intercepts, dict(cfg.get("backbone") or {}), acc)


def _classifier(method: str, C: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if method == "logistic":
        return LogisticRegression(C=C, max_iter=1000, class_weight="balanced")
    return LinearSVC(C=C, class_weight="balanced", random_state=seed, max_iter=5000)


def fit_cavs(
    embeddings: np.ndarray,
    concept_labels: np.ndarray,
    concept_names: Sequence[str],
    *,
    method: str = "svm",
    C: float = 0.1,
    holdout: float = 0.2,
    backbone: Mapping[str, Any] | None = None,
    bank_name: str = "cav",
    seed: int = 0,
) -> CAVBank:
    """Learn one direction per concept from labelled example embeddings.

    Parameters
    ----------
    embeddings
        ``(n, dim)`` embeddings of example images.
    concept_labels
        ``(n, n_concepts)`` 0/1: does image ``i`` show concept ``k``? Each concept
        needs positives and negatives.
    concept_names
        One name per column.
    method
        ``"svm"`` (linear SVM, as in Post-hoc CBM) or ``"logistic"``.
    C
        Inverse regularisation strength of the classifiers.
    holdout
        Fraction of examples held out to measure each direction's accuracy
        (the directions are fitted on the rest); 0 fits on everything.
    backbone
        Identity of the backbone that made ``embeddings`` (stored with the bank).
    bank_name, seed
        Name of the resulting bank; seed of the held-out split.
    """
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 <= holdout < 1:
        raise ConfigurationError(f"holdout must lie in [0, 1), got {holdout}")
    X = check_embeddings(embeddings, "example embeddings").astype(np.float64)
    Y = np.asarray(concept_labels)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0] or Y.shape[1] != len(concept_names):
        raise ValidationError(
            f"concept_labels must be (n_examples={X.shape[0]}, n_concepts="
            f"{len(concept_names)}), got shape {Y.shape}"
        )
    Y = (Y > 0).astype(np.int64)
    counts = Y.sum(axis=0)
    bad = [concept_names[int(k)] for k in np.flatnonzero((counts == 0) | (counts == Y.shape[0]))]
    if bad:
        raise ValidationError(
            f"concepts {bad[:5]} have only positive or only negative examples; each concept "
            "needs images with and without it"
        )
    rng = np.random.default_rng(seed)
    test = np.asarray(rng.random(X.shape[0]) < holdout, dtype=bool)
    vectors = np.empty((Y.shape[1], X.shape[1]))
    intercepts = np.empty(Y.shape[1])
    accuracy = np.full(Y.shape[1], np.nan)
    with threadpool_limits(1):
        for k in range(Y.shape[1]):  # one small classifier per concept
            y = Y[:, k]
            held_out = bool(np.any(test)) and np.unique(y[~test]).size == 2
            fit_rows = ~test if held_out else np.ones_like(test)
            clf = _classifier(method, C, seed).fit(X[fit_rows], y[fit_rows])
            w = clf.coef_.ravel()
            norm = float(np.linalg.norm(w)) or 1.0
            vectors[k], intercepts[k] = w / norm, float(clf.intercept_[0]) / norm
            if held_out:
                accuracy[k] = float((clf.predict(X[test]) == y[test]).mean())
    bank = ConceptBank(
        name=bank_name,
        concepts=tuple(concept_names),
        provenance={
            "source": "concept activation vectors",
            "method": method,
            "C": C,
            "n_examples": int(X.shape[0]),
            "positives": counts.astype(int).tolist(),
            "holdout": holdout,
            "backbone_id": (backbone or {}).get("backbone_id"),
        },
    )
    return CAVBank(bank, vectors.astype(np.float32), intercepts, dict(backbone or {}), accuracy)


def fit_cavs_from_examples(
    positives: Mapping[str, np.ndarray], negatives: np.ndarray, **kwargs: Any
) -> CAVBank:
    """Post-hoc CBM's setup: example embeddings per concept against a shared negative set.

    ``positives`` maps concept name to ``(n_k, dim)`` embeddings of images showing it;
    ``negatives`` are ``(m, dim)`` embeddings of images showing none of them. Other
    keyword arguments go to :func:`fit_cavs`.
    """
    names = list(positives)
    if not names:
        raise ValidationError("give at least one concept with positive examples")
    blocks = [np.asarray(positives[n]) for n in names] + [np.asarray(negatives)]
    X = np.concatenate(blocks)
    Y = np.zeros((X.shape[0], len(names)), np.int64)
    start = 0
    for k, block in enumerate(blocks[:-1]):
        Y[start : start + len(block), k] = 1
        start += len(block)
    return fit_cavs(X, Y, names, **kwargs)
