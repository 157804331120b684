"""Sparse heads side by side: ours vs glm-saga vs scikit-learn saga, same features/splits.

    python benchmarks/bench_heads.py --workload synthetic --size 20000x300x30 --budget 120

Workloads: ``synthetic`` (CLIP-like correlated concept scores: a low-rank latent with
class structure plus noise; ``--size NxKxC``, e.g. ``50000x1000x100``) and ``shapes``
(the shapes world through the tiny CLIP and the shipped concept bank, via the cbm API).
Each method walks VLG-CBM's NEC path (150 lambdas from 0.1 down by 2^-0.1) within
``--budget`` seconds; glm-saga runs with Label-free CBM / VLG-CBM settings (alpha 0.99,
batch 512, lr 0.1). Peak memory is the largest live torch tensor storage (tracked by a
dispatch mode, separate untimed pass) or tracemalloc for numpy (scikit-learn).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

LAMS = [0.1 * 2 ** (-0.1 * i) for i in range(150)]
ALPHA = 0.99


class TensorMemory(TorchDispatchMode):
    """Peak bytes of live torch storages created while active (views counted once)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[int, int] = {}
        self.size: dict[int, int] = {}
        self.current = self.peak = 0

    def _drop(self, key: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.current -= self.size.pop(key)
            del self.refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                key = t.untyped_storage().data_ptr()
                if key not in self.refs:
                    self.refs[key], self.size[key] = 0, t.untyped_storage().nbytes()
                    self.current += self.size[key]
                    self.peak = max(self.peak, self.current)
                self.refs[key] += 1
                weakref.finalize(t, self._drop, key)
        return out


# -- workloads ---------------------------------------------------------------------------
def synthetic(n: int, k: int, c: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """CLIP-like: concept scores are correlated projections of a low-rank embedding."""
    rng = np.random.default_rng(seed)
    rank = 64
    means = rng.standard_normal((c, rank)) * 1.0
    total = n + n // 5 + n // 5
    y = rng.integers(0, c, total)
    z = means[y] + rng.standard_normal((total, rank))
    A = rng.standard_normal((rank, k)) / np.sqrt(rank)
    A += 0.6 * rng.standard_normal((1, k))  # a shared direction: strong correlation
    X = z @ A + 0.5 * rng.standard_normal((total, k))
    X = ((X - X[:n].mean(0)) / X[:n].std(0)).astype(np.float32)
    a, b = n, n + n // 5
    return X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:]


def shapes(n_train: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images
    from cbm.concepts.bank import ConceptBank
    from cbm.data.shapes import ShapesWorld
    from cbm.model import ConceptBottleneckModel

    world = ShapesWorld(seed=seed)
    backbone = OpenCLIPBackbone(device="cpu")
    cache = EmbeddingCache(None)
    bank = ConceptBank.load("shapes")
    model = ConceptBottleneckModel(
        bank, backbone.encode_texts(bank.prompts), backbone.identity(), world.class_names
    )
    splits = []
    for name, size in (("train", n_train), ("val", n_train // 3), ("test", n_train // 2)):
        data = world.sample(size, name)
        emb = embed_images(backbone, data.images, cache, progress=False)
        if name == "train":
            model.scorer.fit(emb)
        splits += [model.scorer.transform(emb).astype(np.float32), np.asarray(data.labels)]
    return tuple(splits)


# -- methods: each returns {nec_target: (seconds, test accuracy, nec)} ---------------------
def nec_of(W: np.ndarray) -> float:
    return float((np.abs(W) > 1e-5).sum() / W.shape[0])


def acc(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(((X @ W.T + b).argmax(1) == y).mean())


def run_ours(data: tuple[np.ndarray, ...], targets: list[float], budget: float) -> dict:
    from cbm.heads import SparseLinearHead

    Xtr, ytr, Xva, yva, Xte, yte = data
    out: dict[float, tuple[float, float, float]] = {}
    for t in targets:
        start = time.perf_counter()
        head = SparseLinearHead(target_nec=t, n_threads=None).fit(Xtr, ytr, X_val=Xva, y_val=yva)
        sel = head.selection_
        out[t] = (time.perf_counter() - start, head.score(Xte, yte), head.nec_)
        out[f"penalised@{t}"] = sel["val_accuracy_penalised"], sel["val_accuracy_debiased"]
    return out


def run_glm_saga(
    data: tuple[np.ndarray, ...], targets: list[float], budget: float, epochs: int
) -> dict:
    from glm_saga.elasticnet import IndexedTensorDataset, train_saga
    from torch.utils.data import DataLoader

    Xtr, ytr, _, _, Xte, yte = data
    n, k = Xtr.shape
    c = int(ytr.max()) + 1
    ds = IndexedTensorDataset(torch.from_numpy(Xtr), torch.from_numpy(ytr).long())
    loader = DataLoader(ds, batch_size=512, shuffle=True)
    linear = torch.nn.Linear(k, c)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    return _walk(
        lambda lam, state: train_saga(
            linear, loader, 0.1, epochs, lam, ALPHA, state=state, n_ex=n, n_classes=c,
            tol=1e-4, group=False, logger=lambda *_: None,
        ),  # fmt: skip
        lambda: (linear.weight.detach().numpy().copy(), linear.bias.detach().numpy().copy()),
        Xte, yte, targets, budget,
    )  # fmt: skip


def run_sklearn(
    data: tuple[np.ndarray, ...], targets: list[float], budget: float, epochs: int
) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    Xtr, ytr, _, _, Xte, yte = data
    n = len(ytr)
    model = LogisticRegression(
        solver="saga", l1_ratio=ALPHA, warm_start=True, max_iter=epochs, tol=1e-4
    )

    def fit(lam: float, state: Any) -> None:
        model.set_params(C=1.0 / (lam * n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xtr, ytr)

    return _walk(fit, lambda: (model.coef_, model.intercept_), Xte, yte, targets, budget)


def _walk(
    step: Callable[[float, Any], Any],
    weights: Callable[[], tuple[np.ndarray, np.ndarray]],
    Xte: np.ndarray,
    yte: np.ndarray,
    targets: list[float],
    budget: float,
) -> dict:
    """VLG-CBM's protocol: down the grid; at each target keep the last head within it."""
    out: dict[Any, Any] = {}
    start, state, last = time.perf_counter(), None, None
    pending = sorted(targets)
    for lam in LAMS:
        state = step(lam, state)
        W, b = weights()
        elapsed = time.perf_counter() - start
        while pending and nec_of(W) > pending[0]:
            t = pending.pop(0)
            out[t] = last if last is not None else (elapsed, float("nan"), nec_of(W))
        last = (elapsed, acc(W, b, Xte, yte), nec_of(W))
        if not pending:
            break
        if elapsed > budget:
            for t in pending:
                out[t] = (float("inf"), last[1], last[2])
            break
    for t in pending:  # the grid ended (or the bank is smaller than the target)
        out.setdefault(t, last)
    return out


def peak_memory(fn: Callable[[], Any], torch_based: bool) -> float:
    if torch_based:
        with TensorMemory() as mem:
            fn()
        return mem.peak / 2**20
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", choices=["synthetic", "shapes"], default="synthetic")
    p.add_argument("--size", default="20000x300x30", help="NxKxC for synthetic")
    p.add_argument("--budget", type=float, default=120.0, help="seconds per method")
    p.add_argument("--epochs", type=int, default=10, help="glm-saga/sklearn epochs per lambda")
    p.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    p.add_argument("--methods", default="ours,glm-saga,sklearn")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        if args.workload == "synthetic":
            n, k, c = (int(v) for v in args.size.lower().split("x"))
            data = synthetic(n, k, c)
        else:
            data = shapes(int(args.size.split("x")[0]))
        targets = [5.0, 30.0]
        feature_mib = data[0].nbytes / 2**20
        methods = {
            "ours": (lambda b: run_ours(data, targets, b), True),
            "glm-saga": (lambda b: run_glm_saga(data, targets, b, args.epochs), True),
            "sklearn": (lambda b: run_sklearn(data, targets, b, args.epochs), False),
        }
        rows = {}
        for name in args.methods.split(","):
            fn, torch_based = methods[name]
            t0 = time.perf_counter()
            res = fn(args.budget)
            print(f"{name}: fitted in {time.perf_counter() - t0:.1f}s", flush=True)
            short = {
                "ours": lambda: run_ours(data, [5.0], 1e9),
                "glm-saga": lambda: run_glm_saga(data, [0.0], 1e9, 1),
                "sklearn": lambda: run_sklearn(data, [0.0], 1e9, 1),
            }[name]
            rows[name] = (res, peak_memory(short, torch_based))
            print(f"{name}: memory pass done", flush=True)
    print(f"workload {args.workload} {data[0].shape[0]}x{data[0].shape[1]}, "
          f"{int(data[1].max()) + 1} classes; features {feature_mib:.1f} MiB; "
          f"threads {args.threads}; budget {args.budget:.0f}s")  # fmt: skip
    ref = rows.get("glm-saga", (None,))[0]
    print("| method | s to NEC=5 | test acc @NEC5 (NEC) | test acc @NEC30 (NEC) "
          "| peak tensor MiB | speed-up vs glm-saga |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, (res, mem) in rows.items():
        t5, a5, n5 = res[5.0]
        _, a30, n30 = res[30.0]
        ratio = "" if ref is None else f"{ref[5.0][0] / t5:.1f}x"
        if ref is not None and not np.isfinite(ref[5.0][0]):
            ratio = f">{args.budget / t5:.1f}x (lower bound)" if np.isfinite(t5) else "n/a"
        t5s = f"{t5:.1f}" if np.isfinite(t5) else f">{args.budget:.0f}"
        print(f"| {name} | {t5s} | {a5:.3f} ({n5:.2f}) | {a30:.3f} ({n30:.2f}) | {mem:.1f} "
              f"| {ratio} |")  # fmt: skip
    if "ours" in rows:
        for t in targets:
            pen, deb = rows["ours"][0][f"penalised@{t}"]
            print(f"ours NEC {t:g}: val acc penalised {pen:.3f}, debiased {deb:.3f}")


if __name__ == "__main__":
    main()
