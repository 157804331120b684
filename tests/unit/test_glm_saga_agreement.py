"""Our path solver and glm-saga (the peer) land on the same solution of one problem."""

import numpy as np
import pytest

from cbm.heads import SparseLinearHead
from cbm.heads.peers import GlmSaga, objective

pytest.importorskip("glm_saga")


def test_same_solution_as_glm_saga_at_one_lambda():
    rng = np.random.default_rng(0)
    n, k, c, lam, alpha = 300, 10, 3, 0.02, 0.99
    X = rng.standard_normal((n, k)).astype(np.float32)
    W = np.zeros((c, k))
    W[:, :4] = 2.0 * rng.standard_normal((c, 4))
    y = (X @ W.T + rng.gumbel(size=(n, c))).argmax(1)
    # Full-batch SAGA at a large step converges in a few hundred epochs to tight tol.
    saga = GlmSaga(X, y, batch_size=n, lr=1.0, alpha=alpha, tol=1e-6)
    with pytest.warns(UserWarning, match="softmax"):  # glm-saga's own implicit-dim call
        saga.step(lam, 3000)
    assert saga.loader.epochs < 3000  # it stopped on its tolerance, not the cap
    W_saga, b_saga = saga.weights()
    ours = SparseLinearHead(
        target_nec=None, C=1.0 / (lam * n), l1_ratio=alpha, dtype="float64", tol=1e-7, max_iter=3000
    ).fit(X.astype(np.float64), y)
    X64 = X.astype(np.float64)
    f_saga = objective(X64, y, W_saga, b_saga, lam, alpha)
    f_ours = objective(X64, y, ours.coef_, ours.intercept_, lam, alpha)
    assert f_ours == pytest.approx(f_saga, abs=1e-8)
    np.testing.assert_array_equal(ours.coef_ != 0, np.abs(W_saga) > 1e-5)
    np.testing.assert_allclose(ours.coef_, W_saga, atol=1e-4)
    # The intercept is unpenalised and shift-invariant under softmax: compare centred.
    np.testing.assert_allclose(
        ours.intercept_ - ours.intercept_.mean(), b_saga - b_saga.mean(), atol=1e-4
    )
