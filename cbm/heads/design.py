"""Feature rows for the path solver: resident on a device or streamed from a memmap.

Also the full-design products the solver needs outside FISTA's inner loop: gradients
(:func:`loss_grad`), the Lipschitz bound and the logits / backward products, which
dispatch to :class:`cbm.heads.operators.ClassSparse` when given one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from cbm.heads.operators import ClassSparse


class Design:
    """Feature rows on a device: one resident tensor, or a memmap streamed in chunks.

    Parameters
    ----------
    X
        ``(n, k)`` features; a ``np.memmap`` (or ``stream=True``) is read chunk by chunk.
    device, dtype
        Where and in what precision the products run.
    chunk_rows
        Rows per chunk (the peak temporary is ``chunk_rows x n_classes``).
    """

    def __init__(
        self,
        X: np.ndarray,
        device: torch.device,
        dtype: torch.dtype,
        chunk_rows: int = 65536,
        stream: bool | None = None,
        cols: np.ndarray | None = None,
    ) -> None:
        self.device, self.dtype, self.chunk_rows = device, dtype, max(1, int(chunk_rows))
        self.stream = isinstance(X, np.memmap) if stream is None else stream
        self.source: np.ndarray | None = X
        self.cols = cols
        self.n = X.shape[0]
        self.k = X.shape[1] if cols is None else len(cols)
        self.tensor: torch.Tensor | None = None
        if not self.stream:
            arr = X if cols is None else np.take(X, cols, axis=1)
            self.tensor = torch.as_tensor(np.ascontiguousarray(arr)).to(device, dtype)

    @classmethod
    def from_tensor(cls, t: torch.Tensor, chunk_rows: int) -> Design:
        d = cls.__new__(cls)
        d.device, d.dtype, d.chunk_rows = t.device, t.dtype, chunk_rows
        d.stream, d.source, d.cols, d.tensor = False, None, None, t
        d.n, d.k = t.shape
        return d

    def subset(self, cols: np.ndarray) -> Design:
        """The same rows restricted to feature columns ``cols`` (copied once if resident)."""
        if self.tensor is not None:
            if self.tensor.device.type == "cpu":  # numpy's column gather is ~2x faster
                sub = torch.from_numpy(np.take(self.tensor.numpy(), cols, axis=1))
            else:
                idx = torch.as_tensor(cols, device=self.device, dtype=torch.long)
                sub = self.tensor.index_select(1, idx)
            return Design.from_tensor(sub, self.chunk_rows)
        if self.source is None:
            raise RuntimeError("a Design holds either a resident tensor or a source array")
        base = cols if self.cols is None else self.cols[cols]
        return Design(self.source, self.device, self.dtype, self.chunk_rows, True, base)

    def chunks(self) -> Iterator[tuple[slice, torch.Tensor]]:
        for start in range(0, self.n, self.chunk_rows):
            sl = slice(start, min(start + self.chunk_rows, self.n))
            if self.tensor is not None:
                yield sl, self.tensor[sl]
            elif self.source is not None:
                block = np.array(self.source[sl])  # a writable copy of one chunk
                if self.cols is not None:
                    block = np.take(block, self.cols, axis=1)
                yield sl, torch.as_tensor(block).to(self.device, self.dtype)


def loss_grad(
    design: Design, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, stats: bool = True
) -> tuple[float, torch.Tensor, torch.Tensor, int]:
    """Mean cross-entropy, its gradient in ``W`` and ``b``, and the number correct.

    With ``stats=False`` (the inner loop) only the gradients are computed; loss and
    count are returned as 0.
    """
    gW = torch.zeros_like(W)
    gb = torch.zeros_like(b)
    loss = torch.zeros((), dtype=W.dtype, device=W.device)
    correct = torch.zeros((), dtype=torch.long, device=W.device)
    for sl, Xc in design.chunks():
        yc = y[sl]
        Z = torch.addmm(b, Xc, W.T)
        if stats:
            lse = torch.logsumexp(Z, dim=1)
            loss += (lse - Z.gather(1, yc[:, None])[:, 0]).sum()
            correct += (Z.argmax(1) == yc).sum()
            P = torch.exp(Z - lse[:, None])
        else:
            P = torch.softmax(Z, dim=1)
        P[torch.arange(len(yc), device=P.device), yc] -= 1.0
        gW.addmm_(P.T, Xc)
        gb += P.sum(0)
    n = design.n
    return float(loss) / n, gW / n, gb / n, int(correct)


def lipschitz(design: Design, n_iter: int = 20, seed: int = 0) -> float:
    """Upper estimate of the smooth part's Lipschitz constant, ``0.5 * |[X, 1]|^2 / n``.

    Power iteration with one vector costs ``1 / n_classes`` of a gradient pass; the
    softmax Hessian is bounded by ``0.5 I``.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(design.k + 1, generator=gen, dtype=design.dtype).to(design.device)
    v /= v.norm()
    est = 0.0
    for _ in range(n_iter):
        out = torch.zeros_like(v)
        for _, Xc in design.chunks():
            u = Xc @ v[:-1] + v[-1]
            out[:-1] += Xc.T @ u
            out[-1] += u.sum()
        est = float(out.norm())
        if est == 0.0:
            break
        v = out / est
    # 10 % margin: power iteration approaches the top eigenvalue from below.
    return 0.5 * 1.1 * max(est, 1e-12) / design.n


def forward(design: Design | ClassSparse, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Logits ``(n, n_classes)`` (one pass over the rows)."""
    if isinstance(design, ClassSparse):
        return design.forward(W, b)
    return torch.cat([torch.addmm(b, Xc, W.T) for _, Xc in design.chunks()])


def backward(design: Design | ClassSparse, R: torch.Tensor) -> torch.Tensor:
    """``R^T X / n`` for residuals ``R`` ``(n, n_classes)`` (one pass over the rows)."""
    if isinstance(design, ClassSparse):
        return design.backward(R)
    g = torch.zeros(R.shape[1], design.k, dtype=R.dtype, device=R.device)
    for sl, Xc in design.chunks():
        g.addmm_(R[sl].T, Xc)
    return g / design.n
