import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.heads import SparseLinearHead, nec


def _data(n=600, k=30, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    W = np.zeros((classes, k))
    for c in range(classes):
        W[c, rng.choice(k, 3, replace=False)] = rng.choice([-2.0, 2.0], 3)
    y = (X @ W.T + 0.5 * rng.standard_normal((n, classes))).argmax(1)
    return X, y


@parametrize_with_checks([SparseLinearHead(target_nec=None, C=1.0, max_iter=200)])
def test_scikit_learn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("target", [1.0, 3.0, 6.0])
def test_target_nec_is_respected_and_nearly_reached(target):
    X, y = _data()
    head = SparseLinearHead(target_nec=target).fit(X, y)
    assert head.nec_ <= target
    assert head.nec_ >= 0.6 * target
    assert nec(head.coef_) == head.nec_


def test_sparse_head_finds_the_true_concepts():
    X, y = _data()
    head = SparseLinearHead(target_nec=3).fit(X, y)
    assert head.score(X, y) > 0.8


def test_impossible_target_and_single_class_are_explained():
    X, y = _data()
    with pytest.raises(ConfigurationError, match="positive"):
        SparseLinearHead(target_nec=0).fit(X, y)
    with pytest.raises(ValidationError, match="at least two classes"):
        SparseLinearHead().fit(X, np.zeros(len(X), int))
