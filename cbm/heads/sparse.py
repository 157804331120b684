"""A sparse multinomial linear head that lands on a target NEC.

NEC (number of effective concepts) = non-zero weights / number of classes, the
sparsity measure the CBM literature reports accuracy at (NEC = 5 is the common
reference). This head fits an L1 (or elastic-net) multinomial logistic regression with
scikit-learn's SAGA solver and, given ``target_nec``, searches the regularisation
strength for the densest head whose NEC does not exceed the target.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from cbm.exceptions import ConfigurationError, ValidationError


def nec(coef: np.ndarray, tol: float = 0.0) -> float:
    """Number of effective concepts: non-zero weights per class."""
    coef = np.atleast_2d(coef)
    return float((np.abs(coef) > tol).sum() / coef.shape[0])


class SparseLinearHead(ClassifierMixin, BaseEstimator):
    """Sparse multinomial logistic regression over concept scores.

    Parameters
    ----------
    target_nec
        Wanted number of effective concepts per class. The head takes the weakest
        regularisation whose NEC is at most this. ``None`` fits at ``C`` directly.
    C
        Inverse regularisation strength when ``target_nec`` is ``None``.
    l1_ratio
        Elastic-net mixing: 1 is the lasso, 0 ridge (not sparse).
    max_iter, tol
        Solver limits.
    search_steps
        Bisection steps of the search for ``target_nec``.
    random_state
        Seed of the SAGA solver.
    """

    def __init__(
        self,
        target_nec: float | None = 5.0,
        C: float = 1.0,
        l1_ratio: float = 1.0,
        max_iter: int = 300,
        tol: float = 1e-4,
        search_steps: int = 12,
        random_state: int | None = 0,
    ) -> None:
        self.target_nec = target_nec
        self.C = C
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.search_steps = search_steps
        self.random_state = random_state

    def _fit_at(self, X: np.ndarray, y: np.ndarray, C: float) -> LogisticRegression:
        model = LogisticRegression(
            C=C,
            l1_ratio=self.l1_ratio,
            solver="saga",
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        return model

    def fit(self, X: np.ndarray, y: np.ndarray) -> SparseLinearHead:
        """Fit on concept scores ``X`` ``(n_samples, n_concepts)`` and labels ``y``."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValidationError(
                f"a classifier needs at least two classes in training, got only 1 class: "
                f"{self.classes_.tolist()}"
            )
        if self.target_nec is not None and self.target_nec <= 0:
            raise ConfigurationError(f"target_nec must be positive, got {self.target_nec}")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise ConfigurationError(f"l1_ratio must lie in [0, 1], got {self.l1_ratio}")
        if self.target_nec is None:
            model = self._fit_at(X, y, self.C)
            self.C_ = float(self.C)
        else:
            model, self.C_ = self._search(X, y, float(self.target_nec))
        coef = np.atleast_2d(model.coef_)
        intercept = np.atleast_1d(model.intercept_)
        self.n_iter_ = int(np.max(model.n_iter_))
        self.coef_ = coef.astype(np.float64)
        self.intercept_ = intercept.astype(np.float64)
        # A binary head stores one weight row; both classes use its concepts (as the
        # equivalent two-row softmax head), so its NEC is that row's non-zero count.
        self.nec_ = nec(self.coef_)
        return self

    def _search(
        self, X: np.ndarray, y: np.ndarray, target: float
    ) -> tuple[LogisticRegression, float]:
        """Largest C (weakest penalty) whose NEC stays at or below the target."""

        def nec_of(model: LogisticRegression) -> float:
            return nec(model.coef_)

        lo_c, hi_c = 1e-4, 1e-4
        best = self._fit_at(X, y, lo_c)
        if nec_of(best) > target:
            raise ConfigurationError(
                f"even at C={lo_c:g} the head uses NEC {nec_of(best):.2f} > target {target}; "
                "the target is too small for this data"
            )
        # Grow C until the NEC budget is exceeded (or the head is dense).
        while hi_c < 1e4:
            hi_c *= 4.0
            model = self._fit_at(X, y, hi_c)
            if nec_of(model) > target:
                break
            best, lo_c = model, hi_c
        else:
            return best, lo_c
        for _ in range(self.search_steps):
            mid = float(np.sqrt(lo_c * hi_c))
            model = self._fit_at(X, y, mid)
            if nec_of(model) <= target:
                best, lo_c = model, mid
            else:
                hi_c = mid
        return best, lo_c

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = np.atleast_1d(self.decision_function(X))
        if logits.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-logits))
            return np.column_stack([1 - p1, p1])
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
