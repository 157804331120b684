"""Task and concept metrics (pure functions, no plotting or I/O)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cbm.exceptions import ValidationError


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of correct predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValidationError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    if y_true.size == 0:
        raise ValidationError("accuracy of zero samples is undefined")
    return float((y_true == y_pred).mean())


def concept_auroc(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-concept AUROC of scores against binary ground truth.

    Returns NaN for a concept that is always or never present (AUROC undefined).
    """
    truth, scores = np.asarray(truth), np.asarray(scores)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValidationError(
            "truth and scores must both be (n_samples, n_concepts), "
            f"got {truth.shape} and {scores.shape}"
        )
    out = np.full(truth.shape[1], np.nan)
    for j in range(truth.shape[1]):
        col = truth[:, j].astype(bool)
        if 0 < col.sum() < col.size:
            out[j] = roc_auc_score(col, scores[:, j])
    return out


def linear_probe_accuracy(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, C: float = 1.0
) -> float:
    """Test accuracy of a dense L2 logistic regression on raw embeddings (the ceiling)."""
    mu, sd = X_train.mean(0), X_train.std(0) + 1e-8
    probe = LogisticRegression(C=C, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit((X_train - mu) / sd, y_train)
    return accuracy(y_test, probe.predict((X_test - mu) / sd))
