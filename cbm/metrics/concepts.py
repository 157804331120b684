"""Concept quality against ground truth, and the health of a concept bank's scores.

All functions are pure: arrays in, numbers or DataFrames out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score

from cbm.exceptions import ConfigurationError, ValidationError


def _check_same(truth: np.ndarray, scores: np.ndarray, a: str, b: str) -> None:
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValidationError(
            f"{a} and {b} must both be (n_samples, n_concepts), "
            f"got {truth.shape} and {scores.shape}"
        )


def concept_average_precision(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-concept average precision of ``scores`` for binary ``truth``.

    NaN for a concept that is never or always present (AP is then uninformative:
    undefined, or 1 whatever the scores).
    """
    truth, scores = np.asarray(truth), np.asarray(scores)
    _check_same(truth, scores, "truth", "scores")
    out = np.full(truth.shape[1], np.nan)
    for j in range(truth.shape[1]):
        col = truth[:, j].astype(bool)
        if 0 < col.sum() < col.size:
            out[j] = average_precision_score(col, scores[:, j])
    return out


def class_concept_frequency(truth: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_concepts)``: how often each concept is present in each class.

    Classes without samples get NaN rows.
    """
    truth, labels = np.asarray(truth, np.float64), np.asarray(labels, int)
    if truth.ndim != 2 or labels.shape != (truth.shape[0],):
        raise ValidationError(
            f"truth must be (n, n_concepts) and labels (n,), got {truth.shape} and {labels.shape}"
        )
    onehot = np.zeros((labels.size, n_classes))
    onehot[np.arange(labels.size), labels] = 1.0
    counts = onehot.sum(axis=0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (onehot.T @ truth) / counts


def importance_alignment(
    weights: np.ndarray,
    frequency: np.ndarray,
    class_names: Sequence[str] | None = None,
    frequent: float = 0.5,
) -> pd.DataFrame:
    """Does each class lean on the concepts that are truly typical of it?

    Parameters
    ----------
    weights
        ``(n_classes, n_concepts)`` head weights (global importance per class).
    frequency
        ``(n_classes, n_concepts)`` true class-level concept frequency
        (:func:`class_concept_frequency`).
    frequent
        A concept counts as typical of a class when present in at least this
        fraction of its images.

    Returns
    -------
    One row per class: ``n_positive`` (concepts with positive weight),
    ``precision`` (share of them that are typical of the class), ``recall`` (share of
    the class's typical concepts given positive weight) and ``spearman`` (rank
    correlation of weight and frequency over all concepts; NaN when either is constant).
    """
    w, f = np.asarray(weights, np.float64), np.asarray(frequency, np.float64)
    if w.shape != f.shape or w.ndim != 2:
        raise ValidationError(
            f"weights and frequency must both be (n_classes, n_concepts), "
            f"got {w.shape} and {f.shape}"
        )
    names = list(class_names) if class_names is not None else [str(k) for k in range(len(w))]
    rows = []
    for k in range(w.shape[0]):
        pos, typical = w[k] > 0, f[k] >= frequent
        if np.ptp(w[k]) > 0 and np.ptp(np.nan_to_num(f[k])) > 0:
            rho = float(spearmanr(w[k], f[k]).statistic)
        else:
            rho = float("nan")
        rows.append(
            {
                "class": names[k],
                "n_positive": int(pos.sum()),
                "precision": float((pos & typical).sum() / pos.sum()) if pos.any() else np.nan,
                "recall": float((pos & typical).sum() / typical.sum()) if typical.any() else np.nan,
                "spearman": rho,
            }
        )
    return pd.DataFrame(rows)


def concept_existence(
    contributions: np.ndarray,
    scores: np.ndarray,
    truth: np.ndarray,
    ks: Sequence[int] = (1, 3, 5),
) -> dict[int, float]:
    """Are the concepts a prediction claims as present actually in the image?

    A prediction *claims* concept ``j`` when ``j`` pushes the predicted class up
    (contribution > 0) through a high score (score > 0). For each image the claims are
    ranked by contribution; existence@k is the share of the top-k claims (fewer if the
    image has fewer) whose concept is truly present, averaged over images with at
    least one claim. NaN when no image has a claim.

    Parameters
    ----------
    contributions, scores, truth
        ``(n, n_concepts)``: contributions to the predicted class, concept scores,
        binary ground truth.
    ks
        Cut-offs, each at least 1.
    """
    c, s, t = (np.asarray(a) for a in (contributions, scores, truth))
    _check_same(c, s, "contributions", "scores")
    _check_same(c, t, "contributions", "truth")
    if not ks or min(ks) < 1:
        raise ConfigurationError(f"ks must be positive integers, got {list(ks)}")
    claim = (c > 0) & (s > 0)
    ranked = np.where(claim, c, -np.inf)
    order = np.argsort(-ranked, axis=1, kind="stable")
    claim_sorted = np.take_along_axis(claim, order, axis=1)
    true_sorted = np.take_along_axis(t.astype(bool), order, axis=1) & claim_sorted
    has = claim_sorted[:, 0]
    out: dict[int, float] = {}
    for k in ks:
        n_claims = claim_sorted[:, :k].sum(axis=1)
        n_true = true_sorted[:, :k].sum(axis=1)
        out[int(k)] = float((n_true[has] / n_claims[has]).mean()) if has.any() else float("nan")
    return out


def concept_health(
    scores: np.ndarray,
    names: Sequence[str] | None = None,
    active_threshold: float = 0.0,
    min_active_rate: float = 0.001,
    constant_tol: float = 1e-6,
    duplicate_corr: float = 0.98,
) -> pd.DataFrame:
    """Flag dead, constant and duplicate concepts from their scores on a dataset.

    Parameters
    ----------
    scores
        ``(n, n_concepts)``.
    active_threshold
        A concept is active on an image when its score exceeds this.
    min_active_rate
        Dead: active on fewer than this fraction of images.
    constant_tol
        Constant: standard deviation at most this.
    duplicate_corr
        Duplicate: Pearson correlation with an earlier concept at least this; the
        ``duplicate_of`` column names the earliest such concept.

    Returns
    -------
    One row per concept: ``concept``, ``std``, ``active_rate``, ``dead``, ``constant``,
    ``duplicate_of`` (name or empty string).
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValidationError(f"scores must be (n >= 2, n_concepts), got shape {s.shape}")
    names = list(names) if names is not None else [f"concept{j}" for j in range(s.shape[1])]
    if len(names) != s.shape[1]:
        raise ValidationError(f"{len(names)} names for {s.shape[1]} concepts")
    std = s.std(axis=0)
    constant = std <= constant_tol
    z = (s - s.mean(axis=0)) / np.where(constant, 1.0, std)
    corr = (z.T @ z) / s.shape[0]
    corr[constant, :] = 0.0
    corr[:, constant] = 0.0
    # only earlier concepts count, so the first of a duplicate group is kept unflagged
    earlier = np.tril(corr >= duplicate_corr, k=-1)
    dup_idx = np.where(earlier.any(axis=1), earlier.argmax(axis=1), -1)
    active = (s > active_threshold).mean(axis=0)
    return pd.DataFrame(
        {
            "concept": names,
            "std": std,
            "active_rate": active,
            "dead": active < min_active_rate,
            "constant": constant,
            "duplicate_of": [names[i] if i >= 0 else "" for i in dup_idx],
        }
    )
