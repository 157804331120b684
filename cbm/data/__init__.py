"""Datasets with optional ground-truth concepts."""

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
