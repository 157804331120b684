"""Elastic-net multinomial regularisation path in torch (matrix products only).

Objective at each ``lam`` (the glm-saga / glmnet convention)::

    mean_i CE(x_i W^T + b, y_i) + lam * (alpha * |W|_1 + (1 - alpha) / 2 * |W|_2^2)

with the intercept ``b`` unpenalised. scikit-learn's ``LogisticRegression(C, l1_ratio)``
is the same problem at ``lam = 1 / (C * n)``, ``alpha = l1_ratio``.

Why hand-written: glm-saga (the solver Label-free CBM and VLG-CBM use) builds
batch x classes x concepts temporaries and runs SAGA epochs; scikit-learn's saga is a
per-sample loop. Neither uses matrix products, warm-started screening or acceleration.
Here each lambda is solved by FISTA with gradient-based adaptive restart on the
*strong-rule* working set (Tibshirani et al. 2012), verified by a full KKT check, so the
cost per lambda is one backward pass over all features plus cheap passes over the few
active entries (:mod:`cbm.heads.operators`). Rows are processed in chunks, either from a
device tensor (full batch) or read from a ``np.memmap`` chunk by chunk (streamed), so N
in the millions fits in memory (:mod:`cbm.heads.design`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from cbm.heads.design import Design, backward, forward, lipschitz, loss_grad
from cbm.heads.operators import ClassSparse

__all__ = ["Design", "PathSolver", "PathStep", "Solution", "geometric_lambdas", "loss_grad"]


@dataclass
class PathStep:
    """One solved point of the path (what the app plots)."""

    lam: float
    nec: float
    n_nonzero: int
    train_accuracy: float
    val_accuracy: float | None
    n_iter: int
    seconds: float
    """Wall time from the start of the path to this solution."""


@dataclass
class Solution:
    lam: float
    coef: np.ndarray
    intercept: np.ndarray
    step: PathStep
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    """The solver's ``(W, b, grad)`` here, for :meth:`PathSolver.restore`."""


def soft_threshold(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sign(x) * torch.clamp(x.abs() - t, min=0.0)


def _ce_loss(Z: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of logits (no residual)."""
    return float((torch.logsumexp(Z, dim=1) - Z.gather(1, y[:, None])[:, 0]).mean())


def _ce(Z: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Mean cross-entropy of logits and the residual ``softmax(Z) - onehot(y)``."""
    lse = torch.logsumexp(Z, dim=1)
    loss = float((lse - Z.gather(1, y[:, None])[:, 0]).mean())
    R = torch.exp(Z - lse[:, None])
    R[torch.arange(len(y), device=R.device), y] -= 1.0
    return loss, R


def fista(
    design: Design | ClassSparse,
    y: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    l1: float,
    l2: float,
    L: float,
    max_iter: int,
    tol: float,
    mask: torch.Tensor | None = None,
    L_start: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor, float]:
    """Proximal accelerated gradient with backtracking and adaptive (gradient) restart.

    ``L`` is a guaranteed upper bound of the Lipschitz constant; the step starts far
    larger (``L_start``, default ``L / 64``) and backtracks, which on real data cuts
    iterations several-fold. Logits are linear in the iterate, so the extrapolated
    point's logits are combined from stored ones instead of recomputed: one forward and
    one backward pass per iteration. Stops when the largest entry of the proximal
    gradient mapping is below ``tol`` (an approximate KKT condition). ``mask`` (0/1)
    pins entries to zero. Returns the solution, the iteration count, the solution's
    logits (so the caller needs no forward pass) and the last accepted curvature
    (the next call's ``L_start``).
    """
    L_max = L + l2
    # The carried curvature is the loss part only (the L2 part changes with lambda); it
    # is floored at L / 1024 like the in-loop decay, since a strong ridge at the previous
    # lambda can leave it near zero or negative, which made the next solve stop at once.
    L_cur = min(L_max, L_max / 64.0 if L_start is None else max(L_start, L / 1024.0) + l2)
    Zw = forward(design, W, b)
    Vw, Vb, Zv = W, b, Zw
    t = 1.0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - it is returned
        fV, R = _ce(Zv, y)
        fV += 0.5 * l2 * float((Vw * Vw).sum())
        gW = backward(design, R) + l2 * Vw
        gb = R.mean(0)
        del R
        while True:
            step = 1.0 / L_cur
            Wn = soft_threshold(Vw - step * gW, step * l1)
            if mask is not None:
                Wn *= mask
            bn = Vb - step * gb
            Zn = forward(design, Wn, bn)
            dW, db = Wn - Vw, bn - Vb
            quad = float((gW * dW).sum() + (gb * db).sum())
            quad += 0.5 * L_cur * float((dW * dW).sum() + (db * db).sum())
            fn = _ce_loss(Zn, y) + 0.5 * l2 * float((Wn * Wn).sum())
            if L_cur >= L_max or fn <= fV + quad + 1e-6 * abs(fV):
                break
            del Zn
            L_cur = min(2.0 * L_cur, L_max)
        gap = max(float(dW.abs().max()), float(db.abs().max())) * L_cur
        restart = float(-(dW * (Wn - W)).sum() - (db * (bn - b)).sum()) > 0
        if gap <= tol:
            W, b, Zw = Wn, bn, Zn
            break
        if restart:
            t = 1.0
            Vw, Vb, Zv = Wn, bn, Zn
        else:
            t_new = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = (t - 1.0) / t_new
            Vw, Vb = Wn + beta * (Wn - W), bn + beta * (bn - b)
            # Zv = Zn + beta (Zn - Zw), written into Zw's buffer (Zw is replaced next).
            Zv = Zw.mul_(-beta).add_(Zn, alpha=1.0 + beta)
            t = t_new
        W, b, Zw = Wn, bn, Zn
        L_cur = max(L_cur * 0.9, L_max / 1024.0)
    return W, b, it, Zw, max(L_cur - l2, L / 1024.0)


@dataclass
class PathSolver:
    """Runs the path; the estimator in :mod:`cbm.heads.sparse` decides where to stop.

    ``solve(lam)`` warm-starts from the previous solution and returns one step.
    With a resident design, many classes and a sparse mask, FISTA runs on
    :class:`~cbm.heads.operators.ClassSparse` products over one feature-major copy of
    the whole design (made once per fit: 1x the features). Otherwise
    ``max_copy_fraction`` bounds the active-column copy: when more than this share of
    the columns is active, FISTA runs on the full design with a mask instead (no copy).
    """

    design: Design
    y: torch.Tensor
    n_classes: int
    alpha: float
    max_iter: int = 1000
    tol: float = 1e-3
    val: tuple[torch.Tensor, torch.Tensor] | None = None
    max_copy_fraction: float = 0.5
    rel_tol: float = 0.01
    W: torch.Tensor = field(init=False)
    b: torch.Tensor = field(init=False)
    grad: torch.Tensor = field(init=False)
    lam_prev: float = field(init=False)
    lambda_max: float = field(init=False)
    entered: np.ndarray = field(init=False)
    L: float = field(init=False)
    L_cur: float | None = field(init=False, default=None)
    _XT: torch.Tensor | None = field(init=False, default=None)
    steps: list[PathStep] = field(default_factory=list)
    _start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        d = self.design
        counts = torch.bincount(self.y, minlength=self.n_classes).to(d.dtype)
        prior = (counts / counts.sum()).clamp_min(1e-12)
        self.W = torch.zeros(self.n_classes, d.k, dtype=d.dtype, device=d.device)
        self.b = torch.log(prior) - torch.log(prior).mean()
        _, self.grad, _, _ = loss_grad(d, self.y, self.W, self.b)
        self.lambda_max = float(self.grad.abs().max()) / max(self.alpha, 1e-3)
        self.lam_prev = self.lambda_max
        self.entered = np.full((self.n_classes, d.k), np.iinfo(np.int64).max, dtype=np.int64)
        # One bound for every column subset: a column submatrix's spectral norm is at
        # most the full matrix's, so the full design's constant is valid for all.
        self.L = lipschitz(d)

    def _fista(
        self, cols: np.ndarray, W: torch.Tensor, b: torch.Tensor, mask: torch.Tensor,
        l1: float, l2: float, tol: float,
    ) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:  # fmt: skip
        """FISTA on columns ``cols`` (copied when few enough); full-width result."""
        d = self.design
        if d.tensor is not None and ClassSparse.worthwhile(mask, self.n_classes):
            if self._XT is None:  # once per fit: feature-major rows for per-class gathers
                self._XT = ClassSparse.transpose(d.tensor)
            W, b, n_it, Z, self.L_cur = fista(
                ClassSparse(self._XT, mask), self.y, W * mask, b, l1, l2, self.L,
                self.max_iter, tol, mask, self.L_cur,
            )  # fmt: skip
        elif cols.size <= self.max_copy_fraction * d.k:
            idx = torch.as_tensor(cols, device=W.device)
            sub = d.subset(cols)
            Wa, b, n_it, Z, self.L_cur = fista(
                sub, self.y, W[:, idx] * mask[:, idx], b, l1, l2, self.L,
                self.max_iter, tol, mask[:, idx], self.L_cur,
            )  # fmt: skip
            del sub
            W = torch.zeros_like(W)
            W[:, idx] = Wa
        else:
            W, b, n_it, Z, self.L_cur = fista(
                d, self.y, W * mask, b, l1, l2, self.L, self.max_iter, tol, mask, self.L_cur
            )
        return W, b, n_it, Z

    def solve(self, lam: float, record: bool = True, tol: float | None = None) -> PathStep:
        """Solve at ``lam`` from the current iterate (strong rules + KKT check).

        ``tol`` (default: ``min(self.tol, rel_tol * l1)``, or ``l2`` when ``l1`` is 0)
        bounds the proximal-gradient mapping and the KKT violation; a looser one suits
        points that only warm-start.
        """
        l1, l2 = lam * self.alpha, lam * (1.0 - self.alpha)
        if tol is None:
            # Relative to the penalty: an absolute band (l1, l1 + tol] of gradients left
            # at zero is wide at small lambdas and makes the support depend on the path.
            # A pure ridge path (alpha = 0) scales it by the L2 penalty instead: an
            # absolute tolerance stopped ill-conditioned ridge fits after one iteration
            # per lambda, far from the optimum.
            penalty = l1 if l1 > 0 else l2
            tol = min(self.tol, self.rel_tol * penalty) if penalty > 0 else self.tol
        thresh = self.alpha * max(2.0 * lam - self.lam_prev, 0.0)
        nonzero = self.W != 0
        # Working set: the strong rule's candidates, at most ``budget`` new entries (the
        # largest gradients); the KKT check below adds any that were wrongly left out.
        budget = max(2 * int(nonzero.sum()), 4 * self.n_classes)
        active = nonzero | _top(self.grad.abs(), (self.grad.abs() >= thresh) & ~nonzero, budget)
        total_iter = 0
        for _ in range(20):
            cols = np.flatnonzero(active.any(0).cpu().numpy())
            if cols.size:
                mask = active.to(self.W.dtype)
                self.W, self.b, n_it, Z = self._fista(cols, self.W, self.b, mask, l1, l2, tol)
                total_iter += n_it
            else:
                Z = self.b.expand(self.design.n, -1).clone()
            # The solution is zero outside ``cols``: its logits are the full design's, so
            # the KKT check needs only one backward pass.
            correct = int((Z.argmax(1) == self.y).sum())
            _, R = _ce(Z, self.y)
            del Z
            self.grad = backward(self.design, R)
            del R
            violators = (~active) & (self.grad.abs() > l1 * (1.0 + 1e-3) + tol)
            if not bool(violators.any()):
                break
            budget *= 2
            active |= _top(self.grad.abs(), violators, budget)
        self.lam_prev = lam
        nz = (self.W != 0).cpu().numpy()
        step_no = len(self.steps)
        self.entered[nz & (self.entered > step_no)] = step_no
        n_nonzero = int(nz.sum())
        step = PathStep(
            lam=lam,
            nec=n_nonzero / self.n_classes,
            n_nonzero=n_nonzero,
            train_accuracy=correct / self.design.n,
            val_accuracy=self.val_accuracy(self.W, self.b),
            n_iter=total_iter,
            seconds=time.perf_counter() - self._start,
        )
        if record:
            self.steps.append(step)
        return step

    def val_accuracy(self, W: torch.Tensor, b: torch.Tensor) -> float | None:
        if self.val is None:
            return None
        Xv, yv = self.val
        cols = torch.nonzero(W.any(0))[:, 0]
        if 2 * cols.numel() > W.shape[1]:  # a column gather would cost more than it saves
            logits = Xv @ W.T + b
        else:
            logits = Xv[:, cols] @ W[:, cols].T + b
        return float((logits.argmax(1) == yv).double().mean())

    def snapshot(self, step: PathStep) -> Solution:
        return Solution(
            step.lam,
            self.W.double().cpu().numpy().copy(),
            self.b.double().cpu().numpy().copy(),
            step,
            (self.W, self.b, self.grad),
        )

    def restore(self, solution: Solution) -> None:
        """Warm-start the next ``solve`` from ``solution`` (taken by :meth:`snapshot`)."""
        if solution.state is None:
            raise ValueError("this solution carries no solver state")
        self.W, self.b, self.grad = solution.state
        self.lam_prev = solution.lam

    def refit(
        self, start: Solution, support: np.ndarray, l2: float
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Refit without the L1 bias on ``support`` (boolean ``(n_classes, k)``).

        Starts from ``start``; returns coef, intercept and training accuracy.
        """
        cols = np.flatnonzero(support.any(0))
        W = torch.as_tensor(start.coef, device=self.W.device).to(self.W.dtype)
        b = torch.as_tensor(start.intercept, device=self.W.device).to(self.W.dtype)
        if cols.size:
            mask = torch.as_tensor(support, device=self.W.device).to(self.W.dtype)
            W, b, _, Z = self._fista(cols, W, b, mask, 0.0, l2, self.tol)
        else:
            Z = b.expand(self.design.n, -1)
        correct = int((Z.argmax(1) == self.y).sum())
        return W.double().cpu().numpy(), b.double().cpu().numpy(), correct / self.design.n


def _top(score: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` highest-scoring ``candidates`` (a boolean mask of the same shape)."""
    n_cand = int(candidates.sum())
    if n_cand <= k:
        return candidates
    masked = torch.where(candidates, score, torch.full_like(score, -1.0))
    keep = torch.zeros_like(candidates).view(-1)
    keep[masked.view(-1).topk(k).indices] = True
    return keep.view_as(candidates)


def geometric_lambdas(lam_max: float, ratio: float, n: int) -> Callable[[int], float]:
    """``i -> lam_max * ratio ** (i / (n - 1))`` for the default path grid."""
    return lambda i: lam_max * ratio ** (i / max(n - 1, 1))
