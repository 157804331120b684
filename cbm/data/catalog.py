"""Open any supported dataset from a kind and a path (used by the CLI and benchmarks)."""

from __future__ import annotations

from pathlib import Path

from cbm.data.arrays import FASHION_MNIST_DIR, ArrayDataset, load_cifar, load_fashion_mnist
from cbm.data.cub import load_cub
from cbm.data.images import ImageDataset, from_folder, from_manifest
from cbm.exceptions import ConfigurationError

KINDS = ("fashion-mnist", "cifar10", "cifar100", "cub", "folder", "manifest")


def open_dataset(
    kind: str, path: str | Path | None = None, split: str | None = None
) -> ArrayDataset | ImageDataset:
    """``kind`` is one of :data:`KINDS`; ``path`` is its root folder or manifest file.

    ``split`` picks ``"train"``/``"test"`` (and any split named in a manifest or a
    split-level folder); ``None`` keeps everything where the dataset allows it.
    """
    if kind == "fashion-mnist":
        return load_fashion_mnist(path or FASHION_MNIST_DIR, split or "train")
    if path is None:
        raise ConfigurationError(f"dataset kind {kind!r} needs a path (its root folder or CSV)")
    if kind in ("cifar10", "cifar100"):
        return load_cifar(path, kind, split or "train")
    if kind == "cub":
        return load_cub(path, split)
    if kind in ("folder", "manifest"):
        ds = from_folder(path) if kind == "folder" else from_manifest(path)
        return ds.split(split) if split is not None else ds
    raise ConfigurationError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
