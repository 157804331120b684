"""A fitted shapes-world CBM without the tiny CLIP: embeddings made from true concepts.

Each image embedding is the sum of its true concepts' text embeddings plus Gaussian
noise, so cosine concept scores are informative but imperfect, like CLIP's. Used by the
intervention tests (the real backbone is exercised by the notebook test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from cbm.concepts.shapes_bank import shapes_bank
from cbm.data.shapes import DIMENSIONS, ShapesWorld
from cbm.heads import SparseLinearHead
from cbm.model import ConceptBottleneckModel


@dataclass
class Split:
    embeddings: np.ndarray
    labels: np.ndarray
    concepts: np.ndarray


def one_hot_concepts(values: dict[str, np.ndarray]) -> np.ndarray:
    n = next(iter(values.values())).shape[0]
    out = np.zeros((n, sum(len(v) for v in DIMENSIONS.values())), np.uint8)
    offset = 0
    for dim, options in DIMENSIONS.items():
        out[np.arange(n), offset + values[dim]] = 1
        offset += len(options)
    return out


def make_world(
    n_train: int = 800, n_test: int = 600, noise: float = 0.9, dim: int = 48, seed: int = 0
) -> tuple[ConceptBottleneckModel, Split, Split]:
    rng = np.random.default_rng(seed)
    bank = shapes_bank()
    text = rng.standard_normal((len(bank), dim))
    world = ShapesWorld(seed=seed)

    def split(name: str, n: int, sd: float) -> Split:
        labels, values = world.sample_values(n, name)
        concepts = one_hot_concepts(values)
        emb = concepts @ text + sd * np.sqrt(dim / 4) * rng.standard_normal((n, dim))
        return Split(emb, labels, concepts)

    train, test = split("train", n_train, 0.6 * noise), split("test", n_test, noise)
    backbone = {"backbone_id": "synthetic", "weights_id": "none", "embed_dim": dim}
    with threadpool_limits(limits=1):
        model = ConceptBottleneckModel(
            bank, text, backbone, world.class_names, SparseLinearHead(target_nec=3.0)
        ).fit(train.embeddings, train.labels)
    return model, train, test
