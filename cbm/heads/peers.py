"""glm-saga, the peer solver, driven on our problems (benchmarks and agreement tests).

glm-saga (``pip install -e '.[bench]'``) is what Label-free CBM and VLG-CBM fit
their sparse heads with. It is imported lazily: cbm itself does not need it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits


def objective(
    X: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: np.ndarray, lam: float, alpha: float
) -> float:
    """glm-saga's objective: mean CE + lam (alpha |W|_1 + (1 - alpha) / 2 |W|^2)."""
    Z = X @ coef.T + intercept
    Z = Z - Z.max(1, keepdims=True)
    ce = float((np.log(np.exp(Z).sum(1)) - Z[np.arange(len(y)), y]).mean())
    return ce + lam * (alpha * np.abs(coef).sum() + (1 - alpha) / 2 * (coef**2).sum())


class CountingLoader:
    """Wraps a DataLoader and counts the mini-batches glm-saga draws (its epochs)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.batches = 0
        self.per_epoch = len(loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            self.batches += 1
            yield batch

    def __len__(self) -> int:
        return self.per_epoch

    @property
    def epochs(self) -> float:
        return self.batches / self.per_epoch


class GlmSaga:
    """glm-saga's ``train_saga`` on ``(X, y)`` with warm state kept between lambdas.

    Parameters
    ----------
    X, y
        float32 features and integer labels ``0 .. n_classes - 1``.
    batch_size, lr, alpha, tol
        glm-saga's settings (Label-free CBM / VLG-CBM: 512, 0.1, 0.99, 1e-4).
    seed
        Shuffling seed of the loader.
    n_threads
        torch and BLAS threads while it runs (oversubscribed threads on a shared machine
        made its small per-batch products several times slower).
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        batch_size: int = 512,
        lr: float = 0.1,
        alpha: float = 0.99,
        tol: float = 1e-4,
        seed: int = 0,
        n_threads: int = 1,
    ) -> None:
        from glm_saga.elasticnet import IndexedTensorDataset
        from torch.utils.data import DataLoader

        self.n, k = X.shape
        self.n_classes = int(y.max()) + 1
        ds = IndexedTensorDataset(
            torch.from_numpy(np.asarray(X, np.float32)), torch.from_numpy(y).long()
        )
        gen = torch.Generator().manual_seed(seed)
        self.loader = CountingLoader(
            DataLoader(ds, batch_size=batch_size, shuffle=True, generator=gen)
        )
        self.linear = torch.nn.Linear(k, self.n_classes)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        self.lr, self.alpha, self.tol, self.n_threads = lr, alpha, tol, n_threads
        self.state: dict[str, torch.Tensor] | None = None

    def step(self, lam: float, epochs: int) -> None:
        """At most ``epochs`` epochs at ``lam`` from the current state (glm-saga's stop rule)."""
        from glm_saga.elasticnet import train_saga

        old = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            with threadpool_limits(limits=self.n_threads):
                self.state = train_saga(
                    self.linear, self.loader, self.lr, epochs, lam, self.alpha,
                    state=self.state, n_ex=self.n, n_classes=self.n_classes, tol=self.tol,
                    group=False, logger=lambda *_: None,
                )  # fmt: skip
        finally:
            torch.set_num_threads(old)

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.linear.weight.detach().numpy().astype(np.float64),
            self.linear.bias.detach().numpy().astype(np.float64),
        )


def vlg_lambdas(n: int = 150) -> list[float]:
    """VLG-CBM's NEC path: 150 lambdas from 0.1 down by ``2 ** -0.1``."""
    return [0.1 * math.pow(2.0, -0.1 * i) for i in range(n)]
