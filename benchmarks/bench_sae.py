"""SAE training throughput: cbm vs overcomplete vs sae-lens vs the matmul ceiling.

    PYTHONPATH=. python benchmarks/bench_sae.py --dim 512 --latents 4096 --batch 1024

All run the same TopK SAE (k=32) on the same random data, one after the other in this
process, with the same number of torch threads. The ceiling is the measured speed of
the five matrix products one step needs (encoder and decoder forward; decoder
backward for codes and weights; encoder backward for weights only, since inputs need
no gradient: 10 * dim * latents flops per sample), in float32 and bf16. The machine
is shared, so contenders run round-robin ``--repeats`` times and the best is kept.
Peers that are not installed, or whose API changed, are reported as such.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from cbm.concepts.sae import SparseAutoencoder


def matmul_ceiling(d: int, m: int, batch: int, dtype: torch.dtype, reps: int = 5) -> float:
    """Samples/s if a step cost only its five (batch x d x m) matrix products."""
    a = torch.randn(batch, d, dtype=dtype)
    b = torch.randn(d, m, dtype=dtype)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    flops_per_s = 2 * batch * d * m * reps / (time.perf_counter() - start)
    return flops_per_s / (10 * d * m)


def bench_ours(X: np.ndarray, m: int, k: int, batch: int, precision: str) -> float:
    common = dict(n_latents=m, k=k, batch_size=batch, max_samples=None, device="cpu")
    SparseAutoencoder(max_steps=2, precision=precision, **common).fit(X[: 2 * batch])
    sae = SparseAutoencoder(epochs=1, resample_every=0, precision=precision, **common).fit(X)
    return float(sae.report_["samples_per_second"])


def bench_overcomplete(X: np.ndarray, m: int, k: int, batch: int) -> float:
    import matplotlib

    # overcomplete 0.3.0 imports matplotlib.cm.get_cmap, removed in matplotlib 3.9.
    if not hasattr(matplotlib.cm, "get_cmap"):
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap  # type: ignore[attr-defined]
    from overcomplete.sae import TopKSAE, train_sae

    x = torch.from_numpy(X)
    loader = torch.utils.data.DataLoader(x, batch_size=batch, shuffle=True)
    model = TopKSAE(X.shape[1], nb_concepts=m, top_k=k, device="cpu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def mse(x: torch.Tensor, x_hat: torch.Tensor, *rest: object) -> torch.Tensor:
        return ((x - x_hat) ** 2).sum(-1).mean()

    warm = torch.utils.data.DataLoader(x[: 2 * batch], batch_size=batch)
    train_sae(model, warm, mse, opt, nb_epochs=1, monitoring=0)
    start = time.perf_counter()
    train_sae(model, loader, mse, opt, nb_epochs=1, monitoring=0)
    return X.shape[0] / (time.perf_counter() - start)


def bench_sae_lens(X: np.ndarray, m: int, k: int, batch: int) -> float:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput

    cfg = TopKTrainingSAEConfig(d_in=X.shape[1], d_sae=m, k=k, device="cpu", dtype="float32")
    sae = TopKTrainingSAE(cfg)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    x = torch.from_numpy(X)

    def step(xb: torch.Tensor) -> None:
        out = sae.training_forward_pass(
            TrainStepInput(
                sae_in=xb,
                coefficients={},
                dead_neuron_mask=None,
                n_training_steps=0,
                is_logging_step=False,
            )
        )
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    for s in range(0, 2 * batch, batch):
        step(x[s : s + batch])
    perm = torch.randperm(x.shape[0])
    start = time.perf_counter()
    for s in range(0, x.shape[0], batch):
        step(x[perm[s : s + batch]])
    return X.shape[0] / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--latents", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--no-bf16", action="store_true", help="skip bf16 (very slow on CPUs without AMX/BF16)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.batch * args.steps, args.dim)).astype(np.float32)
    d, m, b, k = args.dim, args.latents, args.batch, args.k
    print(f"d={d}, latents={m}, batch={b}, k={k}, {args.steps} steps, {args.threads} thread(s)")
    rows: list[tuple[str, Callable[[], float]]] = [
        ("matmul ceiling fp32", lambda: matmul_ceiling(d, m, b, torch.float32)),
        ("matmul ceiling bf16", lambda: matmul_ceiling(d, m, b, torch.bfloat16)),
        ("cbm SparseAutoencoder fp32", lambda: bench_ours(X, m, k, b, "float32")),
        ("cbm SparseAutoencoder bf16", lambda: bench_ours(X, m, k, b, "bfloat16")),
        ("overcomplete TopKSAE fp32", lambda: bench_overcomplete(X, m, k, b)),
        ("sae-lens TopKTrainingSAE fp32", lambda: bench_sae_lens(X, m, k, b)),
    ]
    if args.no_bf16:
        rows = [r for r in rows if "bf16" not in r[0]]
    results: dict[str, float] = {}
    failed: set[str] = set()
    for _ in range(args.repeats):
        for name, fn in rows:
            if name in failed:
                continue
            try:
                value = fn()
            except Exception as err:  # a peer missing or changed is reported, not fatal
                print(f"{name:<32} n/a ({type(err).__name__}: {str(err)[:80]})")
                failed.add(name)
                continue
            results[name] = max(results.get(name, 0.0), value)
    for name, value in results.items():
        print(f"{name:<32} {value:>10,.0f} samples/s (best of {args.repeats})")
    ours = results.get("cbm SparseAutoencoder fp32")
    if ours:
        print("\nratios (cbm fp32 = 1.00):")
        for name, v in results.items():
            print(f"  {name:<32} {v / ours:5.2f}")


if __name__ == "__main__":
    main()
