"""Saved models for the workbench tests: synthetic ones (no backbone) and a tiny shapes one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cbm.app_support import save_evaluation
from cbm.concepts import ConceptBank
from cbm.heads import SparseLinearHead
from cbm.model import ConceptBottleneckModel

BACKBONE = {"backbone_id": "synthetic", "weights_id": "sha256:0", "embed_dim": 32}


def synthetic_model_dir(
    directory: Path, n_concepts: int = 12, n_classes: int = 4, n: int = 400, seed: int = 0
) -> Path:
    """Fit a model whose classes depend on a few concepts, save it with its test split."""
    rng = np.random.default_rng(seed)
    dim = BACKBONE["embed_dim"]
    concepts = rng.standard_normal((n_concepts, dim))
    X = rng.standard_normal((2 * n, dim)).astype(np.float32)
    unit = concepts / np.linalg.norm(concepts, axis=1, keepdims=True)
    cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ unit.T
    y = cos[:, :n_classes].argmax(1)
    bank = ConceptBank(
        "synthetic",
        tuple(f"concept {i}" for i in range(n_concepts)),
        provenance={"source": "random directions for tests", "seed": seed},
    )
    model = ConceptBottleneckModel(
        bank,
        concepts,
        BACKBONE,
        tuple(f"class {k}" for k in range(n_classes)),
        SparseLinearHead(target_nec=None, C=1.0, max_iter=200),
    )
    model.fit(X[:n], y[:n])
    acc = float((model.predict(X[n:]) == y[n:]).mean())
    model.metrics = {
        "dataset": "synthetic embeddings",
        "test_accuracy": acc,
        "random_control": {"accuracy": 1.0 / n_classes, "nec": model.nec},
    }
    model.save(directory)
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    # Ground truth: the class-defining concept of the image's class is present, the other
    # class concepts absent; the rest are present when the image points their way.
    truth = cos[n:] > 0
    truth[:, :n_classes] = np.eye(n_classes, dtype=bool)[y[n:]]
    save_evaluation(directory, X[n:], y[n:], images, concepts=truth)
    return directory


def find_flip(model_dir: Path, index: int) -> tuple[int, str, str] | None:
    """One edit that flips evaluation image ``index``'s prediction.

    Returns (concept index, "present" or "absent", new class name), trying the concepts
    with the largest head weights first, or ``None`` when no single edit flips it.
    """
    from cbm.app_support import load_evaluation
    from cbm.model import ConceptBottleneckModel

    model = ConceptBottleneckModel.load(model_dir)
    split = load_evaluation(model, model_dir)
    if split is None:
        return None
    absent, present = np.percentile(split.scores, [5, 95], axis=0)
    s = split.scores[index].astype(np.float64)
    base = model.logits_from_scores(s[None])[0].argmax()
    for j in np.argsort(-np.abs(model.weights).max(0)):
        for level, how in ((present[j], "present"), (absent[j], "absent")):
            t = s.copy()
            t[j] = level
            new = model.logits_from_scores(t[None])[0].argmax()
            if new != base:
                return int(j), how, model.class_names[new]
    return None


def tiny_shapes_model(
    backbone: Any, world: Any, n_train: int, max_iter: int
) -> ConceptBottleneckModel:
    """A shapes-world model on the shipped tiny CLIP ``backbone`` with the shipped bank.

    One head fit at a fixed C (no NEC search) keeps it cheap enough for the default lane.
    """
    from threadpoolctl import threadpool_limits

    bank = ConceptBank.load("shapes")
    train = world.sample(n_train, "train")
    with threadpool_limits(limits=1):
        return ConceptBottleneckModel(
            bank,
            backbone.encode_texts(bank.prompts),
            backbone.identity(),
            world.class_names,
            SparseLinearHead(target_nec=None, C=0.1, max_iter=max_iter),
        ).fit(backbone.encode_images(train.images), train.labels)
