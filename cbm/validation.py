"""Input checks shared by every stage; each error names the input and the fix."""

from __future__ import annotations

import numpy as np

from cbm.exceptions import ValidationError


def check_embeddings(x: object, name: str = "embeddings", dim: int | None = None) -> np.ndarray:
    """Return ``x`` as a finite 2-D float array, or raise a helpful error.

    Parameters
    ----------
    x
        Array-like of shape ``(n_samples, dim)``.
    name
        What the array is, for the error message.
    dim
        The expected second dimension, when known.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValidationError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValidationError(f"{name} must be 2-D (n_samples, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValidationError(f"{name} is empty (0 samples)")
    if dim is not None and arr.shape[1] != dim:
        raise ValidationError(
            f"{name} have dimension {arr.shape[1]}, but {dim} was expected "
            "(were they made by another backbone?)"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise ValidationError(
            f"{name} contain NaN or infinite values in {bad.size} row(s), first rows: "
            f"{bad[:5].tolist()}; drop or re-embed those samples"
        )
    return arr.astype(np.float32 if arr.dtype != np.float64 else np.float64, copy=False)


def check_labels(y: object, n: int, name: str = "labels") -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValidationError(f"{name} has {arr.shape[0]} entries but there are {n} samples")
    return arr


def unit_rows(x: np.ndarray, name: str = "embeddings") -> np.ndarray:
    """L2-normalise rows; zero rows are an error, since they have no direction."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValidationError(
            f"{name} has {zero.size} all-zero row(s) (first: {zero[:5].tolist()}), "
            "which have no direction for cosine similarity"
        )
    return x / norms
