"""Datasets with optional ground-truth concepts."""

from cbm.data.arrays import ArrayDataset, load_cifar, load_fashion_mnist
from cbm.data.cub import load_cub
from cbm.data.images import ImageDataset, SkippedImage, from_folder, from_manifest, read_image
from cbm.data.shapes import (
    CONCEPT_DIMENSION,
    CONCEPTS,
    DEFAULT_RULES,
    DIMENSIONS,
    ClassRule,
    ShapesBatch,
    ShapesWorld,
    Shortcut,
    concept_name,
)

__all__ = [
    "ArrayDataset",
    "ImageDataset",
    "SkippedImage",
    "from_folder",
    "from_manifest",
    "load_cifar",
    "load_cub",
    "load_fashion_mnist",
    "read_image",
    "CONCEPTS",
    "CONCEPT_DIMENSION",
    "DEFAULT_RULES",
    "DIMENSIONS",
    "ClassRule",
    "ShapesBatch",
    "ShapesWorld",
    "Shortcut",
    "concept_name",
]
