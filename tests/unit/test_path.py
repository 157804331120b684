import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from cbm.heads import SparseLinearHead, nec


def _problem(n=300, k=15, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k))
    W = np.zeros((c, k))
    W[:, :4] = 2.0 * rng.standard_normal((c, 4))
    y = (X @ W.T + rng.gumbel(size=(n, c))).argmax(1)
    return X, y


def _objective(X, y, coef, intercept, C, alpha):
    Z = X @ coef.T + intercept
    Z = Z - Z.max(1, keepdims=True)
    ce = (np.log(np.exp(Z).sum(1)) - Z[np.arange(len(y)), y]).mean()
    lam = 1.0 / (C * len(y))
    return ce + lam * (alpha * np.abs(coef).sum() + (1 - alpha) / 2 * (coef**2).sum())


def test_path_solver_matches_scikit_learn_on_the_same_objective():
    X, y = _problem()
    C, alpha = 0.05, 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(C=C, l1_ratio=alpha, solver="saga", max_iter=5000, tol=1e-8)
        ref.fit(X, y)
    ours = SparseLinearHead(
        target_nec=None, C=C, l1_ratio=alpha, dtype="float64", tol=1e-8, max_iter=5000
    ).fit(X, y)
    f_ref = _objective(X, y, ref.coef_, ref.intercept_, C, alpha)
    f_ours = _objective(X, y, ours.coef_, ours.intercept_, C, alpha)
    assert f_ours <= f_ref + 1e-6
    np.testing.assert_array_equal(ours.coef_ != 0, ref.coef_ != 0)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-3)
    assert ours.C_ == pytest.approx(C)


def test_streamed_memmap_gives_the_same_head(tmp_path):
    X, y = _problem()
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    kw = dict(target_nec=2.0, dtype="float64", chunk_rows=128, debias=False)
    full = SparseLinearHead(**kw).fit(X, y)
    streamed = SparseLinearHead(**kw).fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y)
    np.testing.assert_allclose(streamed.coef_, full.coef_, atol=1e-6)
    assert streamed.nec_ == full.nec_


def test_path_is_recorded_and_nec_lands_on_target():
    X, y = _problem(n=400, k=20, c=4)
    Xv, yv = _problem(n=200, k=20, c=4, seed=1)
    head = SparseLinearHead(target_nec=3.0, n_lambdas=40).fit(X, y, X_val=Xv, y_val=yv)
    path = head.path_
    assert set(path) >= {"lam", "nec", "train_accuracy", "val_accuracy", "seconds"}
    assert path["nec"][0] == 0.0 and path["nec"].max() > 3.0  # crossed, then bisected
    assert head.nec_ == 3.0
    sel = head.selection_
    assert {"train_accuracy_penalised", "train_accuracy_debiased"} <= set(sel)
    assert sel["val_accuracy_debiased"] is not None


def test_exact_per_class_budget():
    X, y = _problem(n=400, k=20, c=4)
    head = SparseLinearHead(max_per_class=2).fit(X, y)
    per_class = (head.coef_ != 0).sum(1)
    assert (per_class == 2).all()
    assert head.selection_["debiased"] is True
    assert head.score(X, y) > 0.6


def test_accuracy_selection_uses_validation_data():
    X, y = _problem(n=400)
    head = SparseLinearHead(target_nec=None, selection="accuracy", n_lambdas=15).fit(X, y)
    val = head.path_["val_accuracy"]
    assert np.isfinite(val).all()
    assert head.selection_["val_accuracy_penalised"] == pytest.approx(np.nanmax(val))


def test_binary_head_is_one_row_and_predicts():
    X, y = _problem(c=2)
    head = SparseLinearHead(target_nec=2.0).fit(X, y)
    assert head.coef_.shape == (1, X.shape[1])
    assert nec(head.coef_) <= 2.0
    assert head.score(X, y) > 0.7


def test_class_sparse_products_equal_the_dense_masked_ones():
    import torch

    from cbm.heads.operators import ClassSparse

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 30, generator=gen, dtype=torch.float64)
    mask = (torch.rand(12, 30, generator=gen) < 0.1).double()
    mask[3] = 0.0  # a class with no active concept
    W = torch.randn(12, 30, generator=gen, dtype=torch.float64) * mask
    b = torch.randn(12, generator=gen, dtype=torch.float64)
    R = torch.randn(200, 12, generator=gen, dtype=torch.float64)
    op = ClassSparse(ClassSparse.transpose(X), mask)
    torch.testing.assert_close(op.forward(W, b), X @ W.T + b)
    torch.testing.assert_close(op.backward(R), (R.T @ X / 200) * mask)


def test_many_classes_resident_and_streamed_agree(tmp_path):
    # 12 classes: the resident design takes the class-sparse products, the memmap the
    # dense chunked ones; both must give the same head.
    X, y = _problem(n=600, k=40, c=12)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    kw = dict(target_nec=3.0, dtype="float64", debias=False)
    full = SparseLinearHead(**kw).fit(X, y)
    streamed = SparseLinearHead(**kw).fit(np.load(tmp_path / "x.npy", mmap_mode="r"), y)
    assert 2.9 <= full.nec_ <= 3.0
    np.testing.assert_allclose(streamed.coef_, full.coef_, atol=1e-5)


def test_a_strong_ridge_solve_leaves_a_usable_step_for_the_next_lambda():
    # A pure L2 path starts at a huge ridge penalty. The loss curvature carried to the
    # next lambda is (accepted curvature - l2), which once came out <= 0 and stalled every
    # later solve after one iteration, leaving the "dense" head at its first point.
    import torch

    from cbm.heads.design import Design, lipschitz
    from cbm.heads.path import fista

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 12)) * 3 + 1
    y = torch.as_tensor(rng.integers(0, 3, 300))
    design = Design(X, torch.device("cpu"), torch.float64)
    L = lipschitz(design)
    W0, b0 = torch.zeros(3, 12, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    *_, carried = fista(design, y, W0, b0, 0.0, 1e4 * L, L, 200, 1e-9)
    assert carried > 0
    W, b, n_iter, *_ = fista(design, y, W0, b0, 0.0, 1e-3, L, 500, 1e-6, L_start=-L)
    assert n_iter > 1 and float(W.abs().max()) > 1e-3
