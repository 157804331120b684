"""How much label information passes through a bottleneck, with an error bar.

Estimator: a cross-fitted, classifier-based lower bound (the Barber-Agakov bound).
For any classifier ``q(y|x)``,

    I(X; Y) = H(Y) - H(Y|X) >= E[log q(y|x)] - E[log p(y)],

with equality when ``q`` is the true posterior. Each sample's term
``log q(y_i|x_i) - log p_train(y_i)`` is computed by a classifier that never saw the
sample (k-fold cross-fitting), so the mean is an honest estimate of the bound and its
standard error is the spread of those terms over sqrt(n). Written here rather than
taken from a library because the per-sample terms are what make the error bars (and
the paired ratios between two feature sets) possible; the classifier itself is
scikit-learn's logistic regression, whose regularisation is chosen by held-out
log-likelihood. Sound in the dimensions of a CBM (tens to hundreds of features,
thousands of samples) where KSG and binning estimators are badly biased; it is a
*lower* bound, tight when a linear-softmax posterior is close to the truth.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from cbm.exceptions import ConfigurationError, ValidationError

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class MIEstimate:
    """A mutual-information estimate in nats with its standard error.

    Attributes
    ----------
    nats
        The estimate (mean of the per-sample terms).
    se
        Standard error of the mean.
    terms
        Per-sample terms, in the input's sample order (for paired comparisons).
    C
        The regularisation chosen.
    """

    nats: float
    se: float
    terms: np.ndarray
    C: float

    @property
    def bits(self) -> float:
        return self.nats / LN2

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """``nats +- z * se`` (95% for the default z), projected onto ``[0, inf)``.

        Mutual information is never negative; a slightly negative cross-fitted mean
        (a classifier that learnt nothing pays a little for its noise) is clipped.
        """
        return max(0.0, self.nats - z * self.se), max(0.0, self.nats + z * self.se)


def _cross_fitted_terms(
    X: np.ndarray, y: np.ndarray, C: float, folds: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    terms = np.empty(y.shape[0])
    classes = np.unique(y)
    for train, test in folds:
        mu, sd = X[train].mean(0), X[train].std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        prior = np.array([(y[train] == c).mean() for c in classes])
        clf = LogisticRegression(C=C, max_iter=500)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit((X[train] - mu) / sd, y[train])
        proba = np.full((test.size, classes.size), 1e-12)
        cols = np.searchsorted(classes, clf.classes_)
        proba[:, cols] = np.maximum(clf.predict_proba((X[test] - mu) / sd), 1e-12)
        idx = np.searchsorted(classes, y[test])
        rows = np.arange(test.size)
        terms[test] = np.log(proba[rows, idx]) - np.log(np.maximum(prior[idx], 1e-12))
    return terms


def mutual_information_lower_bound(
    X: np.ndarray,
    y: np.ndarray,
    Cs: Sequence[float] = (1e-4, 0.01, 0.1, 1.0, 10.0),
    n_splits: int = 5,
    seed: int = 0,
) -> MIEstimate:
    """Cross-fitted classifier lower bound on ``I(X; y)`` in nats.

    Parameters
    ----------
    X
        ``(n, d)`` features (embeddings, concept scores, a subset of them).
    y
        ``(n,)`` discrete labels.
    Cs
        Inverse L2 strengths tried; the one with the best held-out log-likelihood wins.
        The smallest should be tiny, so that a label independent of ``X`` can be
        fitted by the prior alone (estimate near 0, as it should be).
    n_splits
        Cross-fitting folds.
    seed
        Fold shuffling seed.
    """
    X, y = np.asarray(X, np.float64), np.asarray(y)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValidationError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not Cs:
        raise ConfigurationError("Cs must name at least one regularisation strength")
    counts = np.unique(y, return_counts=True)[1]
    if counts.size < 2:
        raise ValidationError("mutual information with a constant label is 0 by definition")
    if counts.min() < n_splits:
        raise ValidationError(
            f"the rarest label has {counts.min()} samples, fewer than the {n_splits} folds; "
            "use more samples or fewer folds"
        )
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(skf.split(X, y))
    fits = [(float(C), _cross_fitted_terms(X, y, float(C), folds)) for C in Cs]
    C, terms = max(fits, key=lambda fit: float(fit[1].mean()))
    return MIEstimate(float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(terms.size)), terms, C)


def paired_ratio(
    numerator: MIEstimate, denominator: MIEstimate, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """``numerator / denominator`` with a bootstrap standard error over paired samples.

    Both estimates must come from the same samples in the same order.
    """
    a, b = numerator.terms, denominator.terms
    if a.shape != b.shape:
        raise ValidationError("paired_ratio needs two estimates over the same samples")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return float(a.mean() / b.mean()), float(np.std(ratios, ddof=1))


def information_audit(
    embeddings: np.ndarray,
    scores: np.ndarray,
    y: np.ndarray,
    ranking: Sequence[int] | np.ndarray | None = None,
    ks: Sequence[int] = (1, 3, 5, 10),
    seed: int = 0,
    Cs: Sequence[float] = (1e-4, 0.01, 0.1, 1.0, 10.0),
) -> pd.DataFrame:
    """Label information in the embedding, the concept scores and the top-k concepts.

    Parameters
    ----------
    embeddings
        ``(n, d)`` image embeddings (what the bottleneck could have used).
    scores
        ``(n, n_concepts)`` concept scores of the same images.
    y
        ``(n,)`` labels.
    ranking
        Concept indices, most important first (e.g. by total |head weight|); required
        for the top-k rows.
    ks
        Top-k sizes (those larger than the bank are skipped).
    seed, Cs
        Passed to :func:`mutual_information_lower_bound`.

    Returns
    -------
    Rows ``embedding``, ``concept scores``, ``top-k concepts``; columns ``features``,
    ``bits``, ``se_bits``, ``fraction`` (of the embedding's bits) and ``se_fraction``.
    """
    E, S = np.asarray(embeddings), np.asarray(scores)
    emb = mutual_information_lower_bound(E, y, Cs=Cs, seed=seed)
    sets = [
        ("embedding", E.shape[1], emb),
        ("concept scores", S.shape[1], mutual_information_lower_bound(S, y, Cs=Cs, seed=seed)),
    ]
    if ranking is not None:
        order = np.asarray(ranking, int)
        for k in ks:
            if k < S.shape[1]:
                est = mutual_information_lower_bound(S[:, order[:k]], y, Cs=Cs, seed=seed)
                sets.append((f"top-{k} concepts", int(k), est))
    rows = []
    for name, n_feat, est in sets:
        frac, se_frac = paired_ratio(est, emb, seed=seed)
        rows.append(
            {
                "features": name,
                "n_features": n_feat,
                "bits": est.bits,
                "se_bits": est.se / LN2,
                "fraction": frac,
                "se_fraction": se_frac,
            }
        )
    return pd.DataFrame(rows)
