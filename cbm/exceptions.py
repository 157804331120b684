"""Errors that say what was wrong and what would be right."""

from __future__ import annotations


class CBMError(Exception):
    """Base class of every error cbm raises on purpose."""


class ConfigurationError(CBMError, ValueError):
    """A parameter or configuration is invalid."""


class ValidationError(CBMError, ValueError):
    """Input data (arrays, images, concept lists) is invalid."""


class ArtefactError(CBMError, ValueError):
    """A saved artefact (model directory, cache entry, bank file) cannot be read safely."""


class NotFittedError(CBMError, AttributeError):
    """An estimator was used before ``fit``."""
