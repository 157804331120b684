"""Workloads of ``bench_heads.py``: (train, val, test) concept scores and labels.

``synthetic``: CLIP-like correlated concept scores at any size. ``shapes``: the shapes
world through the tiny CLIP and the shipped concept bank. ``fashion``: Fashion-MNIST
through EfficientNet-Lite0 and its ImageNet-class concept bank (``bench_fashion.py``),
embeddings cached by ``cbm.backbones.EmbeddingCache`` (``$CBM_CACHE_DIR``, default
``~/.cache/cbm``: outside the repository).
"""

from __future__ import annotations

import numpy as np


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
    if total * k <= 10**8:
        X = z @ A + 0.5 * rng.standard_normal((total, k))
        X = ((X - X[:n].mean(0)) / X[:n].std(0)).astype(np.float32)
    else:  # in float32 blocks: the float64 temporaries would not fit in memory
        X = np.empty((total, k), np.float32)
        for s in range(0, total, 50_000):
            zb = z[s : s + 50_000]
            noise = rng.standard_normal((len(zb), k), dtype=np.float32)
            X[s : s + 50_000] = (zb @ A).astype(np.float32) + 0.5 * noise
        mean, std = X[:n].mean(0), X[:n].std(0)
        for s in range(0, total, 50_000):
            X[s : s + 50_000] -= mean
            X[s : s + 50_000] /= std
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


def fashion(n_pool: int, n_concepts: int = 300, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Fashion-MNIST: ``n_pool`` training images (3/4 train, 1/4 val), ``n_pool // 2`` test.

    The same stratified subsamples as ``bench_fashion.py --n-train N --n-test N/2``, so
    their cached embeddings are shared.
    """
    from bench_fashion import imagenet_class_bank

    from cbm.backbones import EfficientNetLite0Backbone, EmbeddingCache, embed_images
    from cbm.data import load_fashion_mnist
    from cbm.model import ConceptBottleneckModel

    pool = load_fashion_mnist(split="train").subsample(n_pool, seed=seed)
    test = load_fashion_mnist(split="test").subsample(n_pool // 2, seed=seed)
    bb = EfficientNetLite0Backbone(device="cpu")
    cache = EmbeddingCache()
    emb_pool = embed_images(bb, pool.images, cache, batch_size=50)
    emb_test = embed_images(bb, test.images, cache, batch_size=50)
    labels = np.asarray(pool.labels)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_pool)
    tr, va = np.sort(order[: 3 * n_pool // 4]), np.sort(order[3 * n_pool // 4 :])
    bank, vectors = imagenet_class_bank(bb, emb_pool[tr], n_concepts)
    model = ConceptBottleneckModel(bank, vectors, bb.identity(), pool.classes)
    model.scorer.fit(emb_pool[tr])
    out = []
    for emb, y in ((emb_pool[tr], labels[tr]), (emb_pool[va], labels[va]), (emb_test, test.labels)):
        out += [model.scorer.transform(emb).astype(np.float32), np.asarray(y)]
    return tuple(out)
