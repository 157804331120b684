"""Fit a head and an SAE on sharded features larger than the memory they are allowed.

    python benchmarks/bench_memory.py --rows 400000 --dim 256 --classes 4 --budget-mb 128

Pipeline: a synthetic image set (tiny random images, labels from a hidden linear rule)
is embedded by a fixed random-projection "backbone" into ``--shards`` content-keyed
shard files (:func:`cbm.backbones.shards.extract_shard`), the shards are joined into
one ``.npy`` (:func:`cbm.backbones.mmap_features.consolidate_shards`), and a
:class:`~cbm.heads.sparse.SparseLinearHead` and a
:class:`~cbm.concepts.sae.SparseAutoencoder` are fitted from it as a read-only
``np.memmap``.

Each fit runs in a fresh subprocess that, after its imports, caps its private memory
with ``RLIMIT_DATA`` at (what it uses now + ``--budget-mb``): an allocation beyond the
budget fails with ``MemoryError``. The feature file is several times the budget. The
peer is the usual way: ``np.load`` the features into RAM and fit, once under the same
cap and once without a cap. Reported per run: whether it completed, the peak private
(anonymous) memory above the post-import baseline, sampled every 2 ms from
``/proc/self/status`` (``RssAnon``), and ``VmHWM`` (peak RSS). ``VmHWM`` also counts
pages of the memory-mapped file, which are clean page cache the kernel reclaims under
pressure; the cap on private memory is the bound that matters.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def _status() -> dict[str, int]:
    """Selected ``/proc/self/status`` fields in bytes."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "RssAnon", "VmData"):
                out[key] = int(rest.split()[0]) * 1024
    return out


class AnonPeak:
    """Samples ``RssAnon`` every 2 ms in a thread; ``peak`` is the largest value seen."""

    def __init__(self) -> None:
        self.peak = _status()["RssAnon"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status()["RssAnon"])

    def __enter__(self) -> AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status()["RssAnon"])


class ProjectionBackbone:
    """A fixed random projection of the pixels: a cheap, deterministic stand-in backbone."""

    backbone_id = "bench:random-projection"

    def __init__(self, dim: int, seed: int = 0) -> None:
        self.embed_dim = dim
        self.proj = np.random.default_rng(seed).standard_normal((48, dim)).astype(np.float32)

    def identity(self) -> dict[str, Any]:
        return {"backbone_id": self.backbone_id, "weights_id": f"seed:0:{self.embed_dim}"}

    def encode_images(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float32) / 255.0 - 0.5
        return np.tanh(x @ self.proj)


def build_shards(out: Path, rows: int, dim: int, classes: int, shards: int) -> np.ndarray:
    """Embed a synthetic image set into ``shards`` shard files; returns the labels."""
    from cbm.backbones.shards import extract_shard
    from cbm.data import ArrayDataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (rows, 4, 4, 3), dtype=np.uint8)
    rule = rng.standard_normal((48, classes))
    labels = np.argmax((images.reshape(rows, -1) / 255.0 - 0.5) @ rule, axis=1)
    ds = ArrayDataset(images, labels, tuple(f"c{i}" for i in range(classes)), "synthetic")
    backbone = ProjectionBackbone(dim)
    for i in range(shards):
        extract_shard(backbone, ds, out, shards, i, batch_size=8192)
    return labels


# -- the child: one fit under a memory cap -----------------------------------------------
def child(
    mode: str, features: str, labels: str, budget_mb: float | None, chunk_rows: int
) -> dict[str, Any]:
    import resource

    import torch

    from cbm.backbones.mmap_features import consolidate_shards
    from cbm.concepts.sae import SparseAutoencoder
    from cbm.heads.sparse import SparseLinearHead

    torch.set_num_threads(1)
    y_all = np.load(labels)
    # Warm-up on a tiny problem so lazy one-off buffers (BLAS, torch) exist before the cap.
    rng = np.random.default_rng(0)
    warm = rng.standard_normal((256, 8)).astype(np.float32)
    SparseLinearHead(target_nec=None, max_iter=5).fit(warm, np.arange(256) % 2)
    SparseAutoencoder(n_latents=8, k=2, batch_size=32, max_steps=2, device="cpu").fit(warm)
    base = _status()
    if budget_mb is not None:
        cap = base["VmData"] + int(budget_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    result: dict[str, Any] = {"mode": mode, "budget_mb": budget_mb}
    start = time.perf_counter()
    peaks: dict[str, int] = {}
    try:
        with AnonPeak() as peak:
            feats = consolidate_shards(features)
        peaks["consolidate"] = peak.peak
        y = y_all[feats.rows]
        with AnonPeak() as peak:
            X = feats.open() if mode.endswith("memmap") else np.load(feats.path)
            if mode.startswith("head"):
                head = SparseLinearHead(
                    target_nec=None,
                    selection="nec",
                    C=1.0,
                    n_lambdas=8,
                    max_iter=25,
                    tol=1e-3,
                    chunk_rows=chunk_rows,
                )
                head.fit(X, y)
            else:
                sae = SparseAutoencoder(
                    n_latents=512,
                    k=16,
                    batch_size=1024,
                    max_steps=150,
                    max_samples=None,
                    device="cpu",
                    n_threads=1,
                )
                sae.fit(X)
        peaks["fit"] = peak.peak
        # quality, outside the measured window: 5,000 rows are enough to read
        probe = np.asarray(X[:5000])
        if mode.startswith("head"):
            result["train_acc_first_5k"] = round(float(head.score(probe, y[:5000])), 4)
            result["nec"] = round(float(head.nec_), 2)
        else:
            result["sae_r2_first_5k"] = round(float(sae.score(probe)), 4)
        result["completed"] = True
    except MemoryError as err:
        result["completed"] = False
        result["error"] = f"MemoryError: {err}"[:120]
    result["seconds"] = round(time.perf_counter() - start, 1)
    for stage, value in peaks.items():
        result[f"peak_private_{stage}_mb"] = round((value - base["RssAnon"]) / 2**20, 1)
    result["vmhwm_mb"] = round(_status()["VmHWM"] / 2**20, 1)
    result["baseline_mb"] = round(base["RssAnon"] / 2**20, 1)
    return result


def run_child(
    mode: str, out: Path, labels: Path, budget: float | None, chunk_rows: int
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--out",
        str(out),
        "--labels",
        str(labels),
        "--chunk-rows",
        str(chunk_rows),
    ]
    if budget is not None:
        cmd += ["--budget-mb", str(budget)]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-300:].replace("\n", " ")
        return {"mode": mode, "budget_mb": budget, "completed": False, "error": tail}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--budget-mb", type=float, default=96.0)
    ap.add_argument(
        "--sae-budget-mb",
        type=float,
        default=160.0,
        help="the SAE's cap: its 20k-row statistics sample costs ~120 MB at any n",
    )
    ap.add_argument("--chunk-rows", type=int, default=8192, help="head rows per chunk")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--labels", type=Path, default=None)
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    if args.child:
        budget = None if "--budget-mb" not in sys.argv else args.budget_mb  # set by run_child
        print(
            json.dumps(child(args.child, str(args.out), str(args.labels), budget, args.chunk_rows))
        )
        return
    with tempfile.TemporaryDirectory(prefix="cbm-bench-memory-") as tmp:
        out = args.out or Path(tmp) / "shards"
        t0 = time.perf_counter()
        labels = build_shards(out, args.rows, args.dim, args.classes, args.shards)
        np.save(Path(tmp) / "labels.npy", labels)
        lab = Path(tmp) / "labels.npy"
        shard_mb = sum(p.stat().st_size for p in out.glob("shard-*")) / 2**20
        print(
            f"embedded {args.rows} x {args.dim} into {args.shards} shards "
            f"({shard_mb:.0f} MB) in {time.perf_counter() - t0:.0f} s"
        )
        runs = [
            ("head, memmap", "head-memmap", args.budget_mb),
            ("head, np.load into RAM (peer)", "head-ram", args.budget_mb),
            ("head, np.load into RAM (peer)", "head-ram", None),
            ("SAE, memmap", "sae-memmap", args.sae_budget_mb),
            ("SAE, np.load into RAM (peer)", "sae-ram", args.sae_budget_mb),
            ("SAE, np.load into RAM (peer)", "sae-ram", None),
        ]
        rows = []
        for label, mode, budget in runs:
            res = run_child(mode, out, lab, budget, args.chunk_rows)
            rows.append((label, res))
            print(label, json.dumps(res), flush=True)
        feat_mb = (
            sum(
                p.stat().st_size
                for p in out.glob("features-*.npy")
                if not p.name.endswith("rows.npy")
            )
            / 2**20
        )
        print(
            f"\nfeatures file: {feat_mb:.0f} MB ({args.rows} x {args.dim} float32), "
            f"{args.classes} classes; caps are over the post-import baseline\n"
        )
        print(
            "| run | private-memory cap | completes | peak private RAM: consolidate / fit "
            "| VmHWM | time | quality (first 5k rows) |"
        )
        print("|---|---:|:--:|---:|---:|---:|---|")
        for label, res in rows:
            cap = "none" if res.get("budget_mb") is None else f"+{res['budget_mb']:.0f} MB"
            ok = "yes" if res.get("completed") else "no (MemoryError)"
            peaks = " / ".join(
                "-"
                if res.get(f"peak_private_{k}_mb") is None
                else f"+{res[f'peak_private_{k}_mb']:.0f} MB"
                for k in ("consolidate", "fit")
            )
            hwm = res.get("vmhwm_mb")
            quality = (
                f"train acc {res['train_acc_first_5k']:.3f}, NEC {res['nec']:.0f}"
                if "train_acc_first_5k" in res
                else f"R2 {res['sae_r2_first_5k']:.3f}"
                if "sae_r2_first_5k" in res
                else "-"
            )
            print(
                f"| {label} | {cap} | {ok} | {peaks} | "
                f"{'-' if hwm is None else f'{hwm:.0f} MB'} | {res.get('seconds', '-')} s "
                f"| {quality} |"
            )


if __name__ == "__main__":
    main()
