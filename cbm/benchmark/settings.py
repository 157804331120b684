"""One benchmark *setting* = a dataset embedded by a backbone, with its concept banks.

:func:`prepare_setting` opens the data (subsampled, stratified), embeds both splits
through the content-keyed cache, and gathers what the grid's rows need:

* the **text bank** (the "LLM bank" of the literature): a user bank file, else the
  published concept set of that dataset from ``../shared/reference`` (Label-free CBM's
  GPT-3 concepts after its filtering), else the bank cbm ships for the dataset; for an
  image-only backbone there is none, and the reason is recorded;
* how to **name SAE latents**: by the closest words in the backbone's text space
  (Discover-then-Name), or for an image-only backbone with a classifier head by the
  classes each latent's decoder direction raises most;
* a **classifier-head bank** where the backbone has one (EfficientNet-Lite0's ImageNet
  rows as named concept directions).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cbm.concepts.bank import ConceptBank, normalise_name
from cbm.concepts.naming import LatentNames, Vocabulary
from cbm.concepts.sae import SparseAutoencoder
from cbm.exceptions import ConfigurationError

DATASETS = ("shapes", "fashion-mnist", "cifar10", "cifar100", "cub", "imagenet")
USER_DATASETS = ("cifar10", "cifar100", "cub", "imagenet")
# CPU defaults (train, test images); with CUDA every image of both splits is used.
CPU_SIZES = {
    "shapes": (2000, 1000),
    "fashion-mnist": (2000, 1000),
    "cifar10": (5000, 2000),
    "cifar100": (10000, 2000),
    "cub": (3000, 1500),
    "imagenet": (10000, 5000),
}
SHIPPED_BANK = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "cub": "cub200",
    "imagenet": "imagenet",
}
REFERENCE_FILE = "label-free-cbm/{dataset}_filtered.txt"


@dataclass
class Setting:
    """Embeddings of one dataset by one backbone, and the banks built for them."""

    dataset: str
    backbone: str
    identity: dict[str, Any]
    classes: tuple[str, ...]
    emb_train: np.ndarray
    y_train: np.ndarray
    emb_test: np.ndarray
    y_test: np.ndarray
    text_bank: tuple[ConceptBank, np.ndarray] | None
    text_bank_reason: str
    head_bank: tuple[ConceptBank, np.ndarray] | None
    name_latents: Callable[[SparseAutoencoder], LatentNames]
    sae: SparseAutoencoder
    info: dict[str, Any] = field(default_factory=dict)


def default_reference_dir() -> Path | None:
    """``$CBM_REFERENCE_DIR``, else ``../shared/reference`` of the working directory or
    of the source checkout, when present (it is absent on a user's machine)."""
    env = os.environ.get("CBM_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "reference",
        Path(__file__).resolve().parents[3] / "shared" / "reference",
    ]
    return next((c for c in candidates if c.is_dir()), None)


def reference_bank(dataset: str, reference_dir: Path | None) -> ConceptBank | None:
    """The published (Label-free CBM, GPT-3 + filtering) concept set for ``dataset``."""
    if reference_dir is None:
        return None
    path = reference_dir / REFERENCE_FILE.format(dataset=dataset)
    if not path.is_file():
        return None
    unique: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            unique.setdefault(normalise_name(line), line.strip())
    return ConceptBank(
        name=f"label-free-cbm-{dataset}",
        concepts=tuple(unique.values()),
        provenance={
            "source": "Label-free CBM published concept set (GPT-3 concepts after filtering)",
            "file": str(path),
        },
    )


def load_user_bank(path: Path) -> ConceptBank:
    """A bank file: cbm's JSON bank, or a text file with one concept per line."""
    if path.suffix == ".json":
        return ConceptBank.load(path)
    if not path.is_file():
        raise ConfigurationError(f"bank file {path} does not exist")
    vocab = Vocabulary.from_words(path.read_text(encoding="utf-8").splitlines(), path.stem)
    unique = {normalise_name(c): c for c in vocab.entries}
    return ConceptBank(path.stem, tuple(unique.values()), provenance={"file": str(path)})


def text_bank_for(dataset: str, bank_file: Path | None, reference_dir: Path | None) -> ConceptBank:
    """User file > published reference set > the bank cbm ships for the dataset."""
    if bank_file is not None:
        return load_user_bank(bank_file)
    if dataset == "shapes":
        return ConceptBank.load("shapes")
    found = reference_bank(dataset, reference_dir)
    return found if found is not None else ConceptBank.load(SHIPPED_BANK[dataset])


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in label order, repeated names made unique."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    names = list(_IMAGENET_CATEGORIES)
    for i, name in enumerate(names):  # ImageNet repeats a few names ("crane", "maillot")
        if names.index(name) != i:
            names[i] = f"{name} ({i})"
    return names


def classifier_head_bank(
    class_weights: np.ndarray, class_names: list[str], emb_train: np.ndarray, n: int
) -> tuple[ConceptBank, np.ndarray]:
    """The ``n`` classifier rows whose scores vary most over the training images.

    Each row of a classifier head is its class's direction in feature space: a named
    concept for a backbone without a text tower.
    """
    unit = class_weights / np.linalg.norm(class_weights, axis=1, keepdims=True)
    emb = emb_train / np.linalg.norm(emb_train, axis=1, keepdims=True)
    keep = np.sort(np.argsort(-(emb @ unit.T).std(0))[:n])
    bank = ConceptBank(
        name=f"imagenet-classes-{n}",
        concepts=tuple(class_names[i] for i in keep),
        provenance={
            "source": "classifier-head rows (ImageNet classes) as concept directions",
            "selection": f"top {n} by score spread on the training images",
            "imagenet_indices": keep.tolist(),
        },
    )
    return bank, class_weights[keep]


def dataset_root(dataset: str, data_root: Path | None) -> Path | None:
    """Where ``dataset`` lives under ``data_root`` (its standard unpacked layout)."""
    if dataset == "shapes":
        return None
    if dataset == "fashion-mnist":
        sub = data_root / "fashion-mnist" if data_root is not None else None
        return sub if sub is not None and sub.is_dir() else data_root
    if data_root is None:
        raise ConfigurationError(
            f"dataset {dataset!r} needs --data-root: the folder holding "
            "cifar-10-batches-py/ (or -bin/), cifar-100-python/, CUB_200_2011/ or "
            "imagenet/{train,val}/<class>/<image>"
        )
    names = {
        "cifar10": ["", "cifar10"],
        "cifar100": ["", "cifar100"],
        "cub": ["CUB_200_2011", "cub", ""],
        "imagenet": ["imagenet", "ILSVRC2012", ""],
    }[dataset]
    marker = {"cub": "images.txt", "imagenet": "train"}.get(dataset)
    for name in names:
        cand = data_root / name if name else data_root
        if cand.is_dir() and (marker is None or (cand / marker).exists()):
            return cand
    return data_root


def open_splits(
    dataset: str, root: Path | None, n_train: int | None, n_test: int | None, seed: int
) -> tuple[Any, Any]:
    """Train and test splits of a dataset, each a stratified subsample when sizes are set."""
    from cbm.data.arrays import (
        FASHION_MNIST_DIR,
        load_cifar,
        load_fashion_mnist,
        subsample_indices,
    )
    from cbm.data.cub import load_cub
    from cbm.data.images import ImageDataset, from_folder

    def cut(ds: Any, n: int | None) -> Any:
        if n is None or n >= len(ds):
            return ds
        if isinstance(ds, ImageDataset):
            return ds.subset(subsample_indices(ds.labels, n, seed))
        return ds.subsample(n, seed=seed)

    train: Any
    test: Any
    if dataset == "fashion-mnist":
        src = root if root is not None else FASHION_MNIST_DIR
        train, test = (load_fashion_mnist(src, s) for s in ("train", "test"))
    elif dataset not in USER_DATASETS:
        raise ConfigurationError(f"unknown dataset {dataset!r}; choose from {DATASETS}")
    elif root is None:
        raise ConfigurationError(f"dataset {dataset!r} needs a data root")
    elif dataset in ("cifar10", "cifar100"):
        train, test = (load_cifar(root, dataset, s) for s in ("train", "test"))
    elif dataset == "cub":
        train, test = (load_cub(root, s, attributes=False) for s in ("train", "test"))
    else:
        every = from_folder(root, name="imagenet")
        train, test = every.split("train"), every.split("val")
    return cut(train, n_train), cut(test, n_test)
