"""Class-sparse products for the FISTA inner loop of :mod:`cbm.heads.path`.

Near a small target NEC each class uses a handful of concepts, but with many classes
the union of active columns is most of the bank: a dense product over the active
columns then costs ``n x |columns| x classes`` although only ``n x |mask entries|``
of it is needed. :class:`ClassSparse` keeps the active columns feature-major
(``|columns| x n``, contiguous rows) and, per class, gathers only that class's
rows for the masked gradient (the forward product is one CSR times dense product).
Hand-written because torch's
sampled dense-dense product (``sparse.sampled_addmm``) is no faster than the dense
product on CPU; the loop is over classes (at most a few thousand), never samples.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class ClassSparse:
    """Logits and masked gradients through per-class column sets.

    Parameters
    ----------
    XT
        ``(n_columns, n)`` active feature columns, feature-major and contiguous.
    mask
        ``(n_classes, n_columns)`` 0/1: the entries FISTA may make non-zero.
    """

    def __init__(self, XT: torch.Tensor, mask: torch.Tensor) -> None:
        self.XT = XT
        self.k, self.n = XT.shape
        self.n_classes = mask.shape[0]
        rows = mask.nonzero()
        cls = rows[:, 0].cpu().numpy()
        bounds = np.searchsorted(cls, np.arange(self.n_classes + 1))
        self.cols = [rows[a:b, 1] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    @staticmethod
    def transpose(X: torch.Tensor) -> torch.Tensor:
        """Feature-major contiguous copy of row-major ``X`` (numpy's copy is faster on CPU)."""
        if X.device.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(X.numpy().T))
        return X.T.contiguous()

    @staticmethod
    def worthwhile(mask: torch.Tensor, n_classes: int) -> bool:
        """Whether the per-class loop beats one dense product (sparse enough mask)."""
        return n_classes >= 8 and float(mask.mean()) <= 0.2

    def forward(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, n_classes)`` for ``W`` ``(n_classes, n_columns)`` (masked).

        One sparse (CSR) times dense product: ``W`` has few non-zeros per class.
        """
        with warnings.catch_warnings():  # "sparse CSR support is in beta" (it works)
            warnings.simplefilter("ignore", UserWarning)
            csr = W.to_sparse_csr()
        Zt = torch.sparse.mm(csr, self.XT)
        Zt += b[:, None]
        # A transposed view, no copy: elementwise ops keep its layout, so the residual
        # built from it is class-major again and ``backward`` needs no copy either.
        return Zt.T

    def backward(self, R: torch.Tensor) -> torch.Tensor:
        """``R^T X / n`` on the mask's entries (zero elsewhere)."""
        Rt = R.T.contiguous()
        g = torch.zeros(self.n_classes, self.k, dtype=R.dtype, device=R.device)
        for c, idx in enumerate(self.cols):
            if idx.numel():
                g[c, idx] = self.XT[idx] @ Rt[c]
        return g / self.n
