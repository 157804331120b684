"""Task metrics beyond accuracy: balance, calibration, sparsity of each decision.

All functions are pure: arrays in, numbers (or DataFrames) out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.heads.sparse import nec


def _check_pair(y_true: np.ndarray, other: np.ndarray, what: str) -> None:
    if y_true.shape[0] != other.shape[0]:
        raise ValidationError(
            f"{what} has {other.shape[0]} rows but there are {y_true.shape[0]} labels"
        )
    if y_true.shape[0] == 0:
        raise ValidationError("a metric of zero samples is undefined")


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_pair(y_true, y_pred, "y_pred")
    return float(balanced_accuracy_score(y_true, y_pred))


def reliability_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Confidence bins of the top-class probability: count, mean confidence, accuracy.

    Bins are equal-width on ``[0, 1]``; a confidence of exactly 1 falls in the last bin.
    Empty bins are kept (count 0, NaN means) so that tables of two models line up.
    """
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValidationError(f"proba must be (n_samples, n_classes), got shape {proba.shape}")
    _check_pair(y_true, proba, "proba")
    if n_bins < 1:
        raise ConfigurationError(f"n_bins must be at least 1, got {n_bins}")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=conf, minlength=n_bins) / count
        acc = np.bincount(bins, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count.astype(int),
            "confidence": mean_conf,
            "accuracy": acc,
        }
    )


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """ECE: bin-size-weighted mean of ``|accuracy - confidence|`` over confidence bins.

    Parameters
    ----------
    y_true
        ``(n,)`` class indices (columns of ``proba``).
    proba
        ``(n, n_classes)`` predicted probabilities.
    n_bins
        Equal-width bins of the top-class probability.
    """
    table = reliability_table(y_true, proba, n_bins)
    full = table[table["count"] > 0]
    gap = (full["accuracy"] - full["confidence"]).abs()
    return float((gap * full["count"]).sum() / full["count"].sum())


def effective_concepts(contributions: np.ndarray, mass: float = 0.95) -> np.ndarray:
    """Per decision, the fewest concepts whose |contribution| reaches ``mass`` of the total.

    The head's NEC counts weights a class *may* use; this counts the concepts one
    prediction actually rests on: sort a row's absolute contributions (score x weight
    to the predicted logit) in decreasing order and count how many are needed to carry
    ``mass`` (e.g. 95%) of their sum. Rows with no contribution at all get 0.

    Parameters
    ----------
    contributions
        ``(n, n_concepts)``, e.g. :meth:`ConceptBottleneckModel.contributions`.
    mass
        Fraction in ``(0, 1]`` of the total absolute contribution to cover.

    Returns
    -------
    ``(n,)`` int counts.
    """
    c = np.abs(np.asarray(contributions, dtype=np.float64))
    if c.ndim != 2:
        raise ValidationError(f"contributions must be (n, n_concepts), got shape {c.shape}")
    if not 0.0 < mass <= 1.0:
        raise ConfigurationError(f"mass must lie in (0, 1], got {mass}")
    ordered = -np.sort(-c, axis=1)
    cum = np.cumsum(ordered, axis=1)
    total = cum[:, -1:]
    # a small relative tolerance so that mass=1 is reached despite float rounding
    reached = cum >= mass * total * (1 - 1e-12)
    counts = reached.argmax(axis=1) + 1
    return np.where(total[:, 0] > 0, counts, 0).astype(int)


def accuracy_nec_curve(
    scores_train: np.ndarray,
    y_train: np.ndarray,
    scores_test: np.ndarray,
    y_test: np.ndarray,
    Cs: Sequence[float] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0),
    max_iter: int = 300,
    seed: int = 0,
) -> pd.DataFrame:
    """Test accuracy along an L1 regularisation path, with the NEC of each head.

    Fits one L1 multinomial logistic regression (SAGA) per ``C`` on standardised
    features. Run it on a concept bank's scores and on a random bank's scores to
    compare them at equal NEC (:func:`accuracy_at_nec`).

    Returns
    -------
    DataFrame with columns ``C``, ``nec``, ``accuracy``, sorted by NEC.
    """
    Xtr, Xte = np.asarray(scores_train, np.float64), np.asarray(scores_test, np.float64)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    rows = []
    for C in Cs:
        clf = LogisticRegression(
            C=C, l1_ratio=1.0, solver="saga", max_iter=max_iter, random_state=seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Xtr, y_train)
        coef = clf.coef_
        if coef.shape[0] == 1:  # binary: both classes use the same concepts
            coef = np.vstack([coef, coef])
        acc = float((clf.predict(Xte) == np.asarray(y_test)).mean())
        rows.append({"C": float(C), "nec": nec(coef), "accuracy": acc})
    return pd.DataFrame(rows).sort_values(["nec", "C"], ignore_index=True)


def accuracy_at_nec(curve: pd.DataFrame, target_nec: float) -> float:
    """Best accuracy on ``curve`` among heads with NEC at most ``target_nec`` (NaN if none)."""
    ok = curve[curve["nec"] <= target_nec]
    return float(ok["accuracy"].max()) if len(ok) else float("nan")
