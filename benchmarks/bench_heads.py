"""Sparse heads side by side: ours vs glm-saga vs scikit-learn saga, same features/splits.

    python benchmarks/bench_heads.py --workload synthetic --size 20000x300x30 --budget 120
    python benchmarks/bench_heads.py --mode glm-epoch --size 50000x1000x100 --epochs 2
    python benchmarks/bench_heads.py --mode check

Workloads (``benchmarks/heads_workloads.py``): ``synthetic`` (CLIP-like correlated
concept scores, ``--size NxKxC``), ``shapes`` (the shapes world, tiny CLIP, shipped
bank; ``--size`` = train images) and ``fashion`` (Fashion-MNIST, EfficientNet-Lite0,
ImageNet-class bank; ``--size`` = train images). Each peer walks VLG-CBM's NEC path
(150 lambdas from 0.1 down by 2^-0.1, at most ``--epochs`` epochs per lambda) within
``--budget`` seconds with Label-free CBM / VLG-CBM's glm-saga settings (alpha 0.99,
batch 512, lr 0.1, tol 1e-4). Times are wall and CPU (process) seconds: on a loaded
shared machine CPU seconds of these single-threaded runs are what a quiet machine's
wall clock would show, so ratios are taken on CPU seconds. Peak memory is the rise of
the process's peak resident set (VmHWM, reset before each fit) over the features.

``--mode glm-epoch`` times glm-saga epochs at one size (no early stop) and prints the
projected time to NEC 5 for ``--project-epochs`` epochs. ``--mode check`` fits one
small problem with both solvers to convergence: same objective, support and weights.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from heads_workloads import fashion, shapes, synthetic
from threadpoolctl import threadpool_limits

from cbm.heads.peers import GlmSaga, objective, vlg_lambdas

ALPHA = 0.99
Result = dict[Any, Any]


def nec_of(W: np.ndarray) -> float:
    return float((np.abs(W) > 1e-5).sum() / W.shape[0])


def acc(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(((X @ W.T + b).argmax(1) == y).mean())


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


# -- methods: {nec_target: (wall s, cpu s, test accuracy, nec, glm-saga epochs)} -------------
def fit_ours(data: tuple[np.ndarray, ...], target: float) -> Any:
    from cbm.heads import SparseLinearHead

    Xtr, ytr, Xva, yva = data[:4]
    return SparseLinearHead(target_nec=target, n_threads=None).fit(Xtr, ytr, X_val=Xva, y_val=yva)


def run_ours(data: tuple[np.ndarray, ...], targets: list[float], budget: float) -> Result:
    Xte, yte = data[4:]
    out: Result = {}
    for t in targets:
        clock = Clock()
        head = fit_ours(data, t)
        out[t] = (*clock.read(), head.score(Xte, yte), head.nec_, None)
        sel = head.selection_
        out[f"penalised@{t}"] = sel["val_accuracy_penalised"], sel["val_accuracy_debiased"]
    return out


def run_glm_saga(
    data: tuple[np.ndarray, ...], targets: list[float], budget: float, epochs: int
) -> Result:
    Xtr, ytr, _, _, Xte, yte = data
    saga = GlmSaga(Xtr, ytr, alpha=ALPHA)
    return _walk(
        lambda lam: saga.step(lam, epochs),
        saga.weights,
        lambda: saga.loader.epochs,
        Xte,
        yte,
        targets,
        budget,
    )


def run_sklearn(
    data: tuple[np.ndarray, ...], targets: list[float], budget: float, epochs: int
) -> Result:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    Xtr, ytr, _, _, Xte, yte = data
    n = len(ytr)
    model = LogisticRegression(
        solver="saga", l1_ratio=ALPHA, warm_start=True, max_iter=epochs, tol=1e-4
    )

    def fit(lam: float) -> None:
        model.set_params(C=1.0 / (lam * n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Xtr, ytr)

    return _walk(
        fit, lambda: (model.coef_, model.intercept_), lambda: None, Xte, yte, targets, budget
    )


def _walk(
    step: Callable[[float], Any],
    weights: Callable[[], tuple[np.ndarray, np.ndarray]],
    epochs: Callable[[], float | None],
    Xte: np.ndarray,
    yte: np.ndarray,
    targets: list[float],
    budget: float,
) -> Result:
    """VLG-CBM's protocol: down the grid; at each target keep the last head within it."""
    out: Result = {}
    clock, last = Clock(), None
    pending = sorted(targets)
    for lam in vlg_lambdas():
        step(lam)
        W, b = weights()
        wall, cpu = clock.read()
        while pending and nec_of(W) > pending[0]:
            t = pending.pop(0)
            out[t] = last if last is not None else (wall, cpu, float("nan"), nec_of(W), epochs())
        last = (wall, cpu, acc(W, b, Xte, yte), nec_of(W), epochs())
        # One line per lambda on stderr, so a run of hours shows where it is.
        print(
            f"  lambda {lam:.3g}: NEC {last[3]:.2f}, test acc {last[2]:.4f}, "
            f"epochs {last[4]}, {wall:.0f} s wall / {cpu:.0f} s CPU",
            file=sys.stderr,
            flush=True,
        )
        if not pending:
            break
        if wall > budget:
            for t in pending:
                out[t] = (float("inf"), float("inf"), *last[2:])
            break
    for t in pending:  # the grid ended (or the bank is smaller than the target)
        out.setdefault(t, last)
    return out


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_mib(fn: Callable[[], Any]) -> float:
    """Rise of the peak resident set while ``fn`` runs (VmHWM reset first; Linux)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status("VmRSS")
    fn()
    return (_status("VmHWM") - base) / 2**20


# -- modes ----------------------------------------------------------------------------------
def load(args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    if args.workload == "synthetic":
        n, k, c = (int(v) for v in args.size.lower().split("x"))
        return synthetic(n, k, c)
    size = int(args.size.split("x")[0])
    return shapes(size) if args.workload == "shapes" else fashion(size)


def table(args: argparse.Namespace) -> None:
    data = load(args)
    targets = [float(t) for t in args.targets.split(",")]
    feature_mib = data[0].nbytes / 2**20
    methods = {
        "ours": lambda b: run_ours(data, targets, b),
        "glm-saga": lambda b: run_glm_saga(data, targets, b, args.epochs),
        "sklearn": lambda b: run_sklearn(data, targets, b, args.epochs),
    }
    short = {  # the memory pass: one fit / the first lambda
        "ours": lambda: fit_ours(data, 5.0),
        "glm-saga": lambda: run_glm_saga(data, [0.0], 1e9, 1),
        "sklearn": lambda: run_sklearn(data, [0.0], 1e9, 1),
    }
    rows = {}
    for name in args.methods.split(","):
        res = methods[name](args.budget)
        print(f"{name}: done", flush=True)
        rows[name] = (res, peak_rss_mib(short[name]) if args.memory else float("nan"))
    shape = f"{data[0].shape[0]}x{data[0].shape[1]}, {int(data[1].max()) + 1} classes"
    print(
        f"\nworkload {args.workload} {shape}, {len(data[3])} val / {len(data[5])} test; "
        f"features {feature_mib:.1f} MiB; threads {args.threads}; budget {args.budget:.0f}s"
    )
    ref = rows.get("glm-saga", (None,))[0]
    print(
        "| method | s to NEC=5 (CPU s) | glm-saga epochs | test acc @NEC5 (NEC) "
        "| test acc @NEC30 (NEC) | peak extra MiB (x features) "
        "| CPU speed-up vs glm-saga |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (res, mem) in rows.items():
        wall, cpu, a5, n5, ep5 = res[5.0]
        a30, n30 = res[30.0][2:4] if 30.0 in res else (float("nan"), float("nan"))
        ratio = "" if ref is None else f"{ref[5.0][1] / cpu:.1f}x"
        if ref is not None and not np.isfinite(ref[5.0][1]):
            ratio = (
                f">{args.budget / wall:.1f}x (lower bound, wall)" if np.isfinite(wall) else "n/a"
            )
        ts = f"{wall:.1f} ({cpu:.1f})" if np.isfinite(wall) else f">{args.budget:.0f}"
        eps = "" if ep5 is None else f"{ep5:.0f}"
        mems = f"{mem:.1f} ({mem / feature_mib:.2f}x)" if mem >= 8 else "< 8 (RSS resolution)"
        mems = "not measured" if np.isnan(mem) else mems
        print(
            f"| {name} | {ts} | {eps} | {a5:.3f} ({n5:.2f}) | {a30:.3f} ({n30:.2f}) "
            f"| {mems} | {ratio} |"
        )
    if "ours" in rows:
        for t in targets:
            pen, deb = rows["ours"][0][f"penalised@{t}"]
            print(f"ours NEC {t:g}: val acc penalised {pen:.3f}, debiased {deb:.3f}")


def glm_epoch(args: argparse.Namespace) -> None:
    """glm-saga's seconds per epoch at this size (every epoch runs: no early stop)."""
    Xtr, ytr = load(args)[:2]
    saga = GlmSaga(Xtr, ytr, alpha=ALPHA, tol=-1.0)
    saga.step(0.01, 1)  # warm-up epoch (allocates the SAGA table), not timed
    clock = Clock()
    saga.step(0.01, args.epochs)
    wall, cpu = (v / args.epochs for v in clock.read())
    print(
        f"glm-saga {Xtr.shape[0]}x{Xtr.shape[1]}x{int(ytr.max()) + 1}: {wall:.2f} s/epoch "
        f"wall, {cpu:.2f} s/epoch CPU (mean of {args.epochs} epochs after a warm-up)"
    )
    if args.project_epochs:
        print(
            f"projection: {args.project_epochs:g} epochs to NEC 5 x {cpu:.2f} CPU s/epoch = "
            f"{args.project_epochs * cpu:.0f} CPU s"
        )


def check(args: argparse.Namespace) -> None:
    """Both solvers to convergence at one lambda: same solution (objective, support, W)."""
    from cbm.heads import SparseLinearHead

    rng = np.random.default_rng(0)
    n, k, c, lam = 300, 10, 3, 0.02
    X = rng.standard_normal((n, k)).astype(np.float32)
    W = np.zeros((c, k))
    W[:, :4] = 2.0 * rng.standard_normal((c, 4))
    y = (X @ W.T + rng.gumbel(size=(n, c))).argmax(1)
    saga = GlmSaga(X, y, batch_size=n, lr=1.0, alpha=ALPHA, tol=1e-6)
    clock = Clock()
    saga.step(lam, 3000)
    t_saga = clock.read()[1]
    Wg, bg = saga.weights()
    clock = Clock()
    ours = SparseLinearHead(
        target_nec=None, C=1.0 / (lam * n), l1_ratio=ALPHA, dtype="float64", tol=1e-7, max_iter=3000
    ).fit(X.astype(np.float64), y)
    t_ours = clock.read()[1]
    X64 = X.astype(np.float64)
    f_g = objective(X64, y, Wg, bg, lam, ALPHA)
    f_o = objective(X64, y, ours.coef_, ours.intercept_, lam, ALPHA)
    same = bool(((np.abs(Wg) > 1e-5) == (ours.coef_ != 0)).all())
    diff = np.abs(Wg - ours.coef_).max()
    print(
        f"{n}x{k}x{c}, lambda {lam}, alpha {ALPHA}: glm-saga objective {f_g:.10f} "
        f"({saga.loader.epochs:.0f} epochs, {t_saga:.1f} CPU s)"
    )
    print(
        f"ours {f_o:.10f} ({t_ours:.2f} CPU s); difference {f_o - f_g:+.2e}; same support: "
        f"{same} ({int((ours.coef_ != 0).sum())} non-zeros); max |W diff| {diff:.1e}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["table", "glm-epoch", "check"], default="table")
    p.add_argument("--workload", choices=["synthetic", "shapes", "fashion"], default="synthetic")
    p.add_argument("--size", default="20000x300x30", help="NxKxC for synthetic, N otherwise")
    p.add_argument("--budget", type=float, default=120.0, help="wall seconds per peer")
    p.add_argument("--epochs", type=int, default=10, help="peer epochs per lambda / timed epochs")
    p.add_argument("--project-epochs", type=float, default=0.0, help="glm-epoch: epochs to NEC 5")
    p.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    p.add_argument("--methods", default="ours,glm-saga,sklearn")
    p.add_argument("--targets", default="5,30", help="NEC targets (5 must be one)")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory pass")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        {"table": table, "glm-epoch": glm_epoch, "check": check}[args.mode](args)


if __name__ == "__main__":
    main()
