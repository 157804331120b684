"""Embedding extraction: cbm's batched array path vs open_clip's per-image PIL path.

The peer is what open_clip's README does: ``preprocess(PIL image)`` one image at a time,
stack, ``encode_image``. cbm converts a whole uint8 batch to a tensor and resizes and
normalises it with batched tensor ops. Both run the same model on the same images in
one process; the table reports images per second and the ratio, and the largest
difference between the two embeddings (they must agree).

Run: ``python benchmarks/bench_embedding.py [--n 2000] [--image-size 64] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from cbm.backbones import OpenCLIPBackbone
from cbm.data import ShapesWorld


def peer_open_clip(bb: OpenCLIPBackbone, images: np.ndarray, batch: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.stack([bb.preprocess(Image.fromarray(im)) for im in images[s : s + batch]])
            out.append(bb.model.encode_image(x).float().numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=64, help="source image side")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bb = OpenCLIPBackbone(device="cpu")
    images = ShapesWorld(seed=0, image_size=args.image_size).sample(args.n, "bench").images
    timings: dict[str, float] = {}
    results: dict[str, np.ndarray] = {}
    runners = {
        "cbm batched arrays": lambda: bb.encode_images(images, batch_size=args.batch),
        "open_clip per-image PIL": lambda: peer_open_clip(bb, images, args.batch),
    }
    for name, run in runners.items():
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            results[name] = run()
            best = min(best, time.perf_counter() - t)
        timings[name] = best
    a, b = results.values()
    diff = float(np.abs(a - b).max() / np.abs(b).max())
    peer = timings["open_clip per-image PIL"]
    print(
        f"\n{args.n} shapes-world images of {args.image_size}px -> shapes-clip-rn "
        f"({args.threads} thread(s), best of {args.repeats})"
    )
    print(f"{'method':<26}{'seconds':>9}{'images/s':>10}{'speed vs peer':>15}")
    for name, sec in timings.items():
        print(f"{name:<26}{sec:>9.2f}{args.n / sec:>10.0f}{peer / sec:>14.2f}x")
    print(f"max relative difference between the two embeddings: {diff:.1e}")


if __name__ == "__main__":
    main()
