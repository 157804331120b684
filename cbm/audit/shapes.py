"""Audit data for models trained on the shapes world: regenerate images and truth.

A shapes-world model's card records the world (``training.world``), so the exact
train and test images, their concepts and their masks can be drawn again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cbm.audit.report import AuditData
from cbm.backbones.cache import EmbeddingCache, embed_images
from cbm.backbones.dense import dense_image_embeddings
from cbm.data.shapes import CONCEPTS, ClassRule, ShapesWorld, Shortcut
from cbm.exceptions import ArtefactError
from cbm.model import ConceptBottleneckModel


def world_from_config(config: dict[str, Any]) -> ShapesWorld:
    """Rebuild a :class:`ShapesWorld` from its :meth:`ShapesWorld.config`."""
    try:
        rules = tuple(
            ClassRule(r["name"], {k: tuple(v) for k, v in r["allowed"].items()})
            for r in config["rules"]
        )
        shortcut = config.get("shortcut")
        return ShapesWorld(
            rules=rules,
            image_size=int(config["image_size"]),
            seed=int(config["seed"]),
            noise=float(config["noise"]),
            shortcut=Shortcut(**shortcut) if shortcut else None,
        )
    except (KeyError, TypeError) as err:
        raise ArtefactError(f"the model card's training.world is malformed ({err})") from err


def truth_columns(concepts: tuple[str, ...]) -> np.ndarray | None:
    """Column of each bank concept in the world's ground truth, or None if any is unknown."""
    index = {c: i for i, c in enumerate(CONCEPTS)}
    if not all(c in index for c in concepts):
        return None
    return np.array([index[c] for c in concepts])


def shapes_audit_data(
    model: ConceptBottleneckModel,
    backbone: Any,
    n_train: int = 2000,
    n_test: int = 1000,
    n_maps: int = 200,
    upscale: int = 1,
    cache: EmbeddingCache | None = None,
) -> AuditData:
    """Embeddings, labels, concepts and masks of a shapes-world model's own world.

    Parameters
    ----------
    model
        A model whose ``training`` card has ``world`` (as ``cbm demo`` writes).
    backbone
        The model's backbone (an ``OpenCLIPBackbone`` with the same weights).
    n_train, n_test
        Images drawn from the training and test splits the model card names.
    n_maps
        Test images that get per-location embeddings and masks (localisation).
    upscale
        Enlargement before the image tower for a finer grid (see
        :func:`~cbm.backbones.dense.dense_image_embeddings`).
    cache
        Embedding cache (default: none).
    """
    card = model.training
    if "world" not in card:
        raise ArtefactError("the model card has no training.world: not a shapes-world model")
    world = world_from_config(card["world"])
    train = world.sample(n_train, str(card.get("split_train", "train")))
    test = world.sample(n_test, str(card.get("split_test", "test")))
    emb_train = embed_images(backbone, train.images, cache, progress=False)
    emb_test = embed_images(backbone, test.images, cache, progress=False)
    cols = truth_columns(model.bank.concepts)
    truth = dense = masks = images = None
    description = (
        f"shapes world (seed {world.seed}), {n_train} '{card.get('split_train', 'train')}' "
        f"and {n_test} '{card.get('split_test', 'test')}' images regenerated from the model card"
    )
    if cols is not None:
        truth = test.concepts[:, cols]
        m = min(n_maps, n_test)
        if m > 0:
            with_masks = world.sample(m, str(card.get("split_test", "test")), masks=True)
            if with_masks.masks is None:  # pragma: no cover - sample(masks=True) gives them
                raise ArtefactError("the shapes world returned no masks")
            masks = with_masks.masks[:, cols]
            images = with_masks.images
            dense, _ = dense_image_embeddings(backbone, with_masks.images, upscale=upscale)
    else:
        description += "; the bank's concepts are not shapes-world concepts, so no ground truth"
    return AuditData(
        train_embeddings=emb_train,
        train_labels=train.labels,
        test_embeddings=emb_test,
        test_labels=test.labels,
        test_concepts=truth,
        dense=dense,
        masks=masks,
        images=images,
        description=description,
    )
