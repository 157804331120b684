"""Leakage check: do soft concept scores carry label information beyond the concepts?

Soft scores can encode more than "is the concept present": the exact cosine to
"red" also reflects shape, texture and everything else the embedding knows. A head
on soft scores that far outruns one on the same scores binarised (present/absent),
and one on a random bank of the same size, is using that side channel rather than
the concepts (Margeloiu et al. 2021; Havasi et al. 2022 call it leakage).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from cbm.exceptions import ValidationError

HeadFactory = Callable[[], Any]


def _dense_head() -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=1000)


def binarise(scores: np.ndarray, threshold: float | np.ndarray = 0.0) -> np.ndarray:
    """Present (1.0) where a score exceeds ``threshold`` (scalar or per concept), else 0.0."""
    return (np.asarray(scores) > np.asarray(threshold)).astype(np.float64)


def _fit_accuracy(
    make_head: HeadFactory, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray
) -> float:
    head = make_head()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        head.fit(Xtr, ytr)
    return float((np.asarray(head.predict(Xte)) == yte).mean())


def leakage_check(
    scores_train: np.ndarray,
    y_train: np.ndarray,
    scores_test: np.ndarray,
    y_test: np.ndarray,
    random_train: np.ndarray | None = None,
    random_test: np.ndarray | None = None,
    threshold: float | np.ndarray = 0.0,
    make_head: HeadFactory | None = None,
) -> pd.DataFrame:
    """Test accuracy of the same kind of head on soft, binarised and random-bank scores.

    Parameters
    ----------
    scores_train, scores_test
        Concept scores ``(n, n_concepts)``.
    y_train, y_test
        Labels.
    random_train, random_test
        Scores of a random bank of the same size on the same images (optional).
    threshold
        Binarisation threshold (0 = the training mean for standardised scores).
    make_head
        Returns a fresh, unfitted classifier with ``fit``/``predict`` (default: dense L2
        logistic regression; pass a NEC-targeted sparse head to compare at equal NEC).

    Returns
    -------
    Rows ``soft``, ``binarised``, ``random`` (if given); columns ``accuracy`` and
    ``gap_to_soft`` (soft accuracy minus the row's). A large soft-binarised gap with a
    small soft-random gap is the signature of leakage.
    """
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    Str, Ste = np.asarray(scores_train), np.asarray(scores_test)
    if Str.ndim != 2 or Ste.ndim != 2 or Str.shape[1] != Ste.shape[1]:
        raise ValidationError(
            f"train and test scores must be (n, n_concepts) with the same concepts, "
            f"got {Str.shape} and {Ste.shape}"
        )
    if (random_train is None) != (random_test is None):
        raise ValidationError("give both random_train and random_test, or neither")
    make = make_head or _dense_head
    rows = {
        "soft": _fit_accuracy(make, Str, y_train, Ste, y_test),
        "binarised": _fit_accuracy(
            make, binarise(Str, threshold), y_train, binarise(Ste, threshold), y_test
        ),
    }
    if random_train is not None and random_test is not None:
        rows["random"] = _fit_accuracy(
            make, np.asarray(random_train), y_train, np.asarray(random_test), y_test
        )
    table = pd.DataFrame({"scores": list(rows), "accuracy": list(rows.values())})
    table["gap_to_soft"] = rows["soft"] - table["accuracy"]
    return table
