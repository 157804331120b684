"""Where does a concept light up? Activation maps and their scores against masks.

Concept activation maps are cosines between per-location image embeddings (see
:mod:`cbm.backbones.dense`) and concept text embeddings. They are scored against
ground-truth concept masks with the pointing game (does the map's peak fall on the
concept?) and mask IoU (does the map's bright region overlap the concept?).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

from cbm.exceptions import ConfigurationError, ValidationError


def concept_activation_maps(dense: np.ndarray, concept_embeddings: np.ndarray) -> np.ndarray:
    """Cosine of every location's embedding with every concept.

    Parameters
    ----------
    dense
        ``(n, h, w, dim)`` per-location embeddings in the joint image-text space.
    concept_embeddings
        ``(n_concepts, dim)`` concept text embeddings.

    Returns
    -------
    ``(n, n_concepts, h, w)`` cosines.
    """
    d, t = np.asarray(dense, np.float64), np.asarray(concept_embeddings, np.float64)
    if d.ndim != 4 or t.ndim != 2 or d.shape[-1] != t.shape[1]:
        raise ValidationError(
            f"dense must be (n, h, w, dim) and concept embeddings (n_concepts, dim), "
            f"got {d.shape} and {t.shape}"
        )
    d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return np.einsum("nhwd,cd->nchw", d, t)


def _interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation between cell centres, edges clamped."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    out = np.zeros((n_out, n_in))
    np.add.at(out, (np.arange(n_out), lo), 1 - frac)
    np.add.at(out, (np.arange(n_out), hi), frac)
    return out


def upsample_maps(maps: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``(..., h, w)`` maps to ``size`` pixels.

    Cell-centred, as ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)``; done as two small matrix products (separable), which is
    far faster than a generic resampler on thousands of tiny maps.
    """
    m = np.asarray(maps, np.float64)
    hw = (size, size) if isinstance(size, int) else size
    rows = _interpolation_matrix(hw[0], m.shape[-2])
    cols = _interpolation_matrix(hw[1], m.shape[-1])
    return np.einsum("Hh,...hw,Ww->...HW", rows, m, cols, optimize=True)


def _check_maps(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, k = np.asarray(maps, np.float64), np.asarray(masks, bool)
    if m.shape != k.shape or m.ndim != 4:
        raise ValidationError(
            f"maps and masks must both be (n, n_concepts, H, W) at the same resolution "
            f"(upsample_maps helps), got {m.shape} and {k.shape}"
        )
    return m, k


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Per-concept hit rate: share of images whose map peak lies on the concept's mask.

    Only images where the concept is present (non-empty mask) count. Ties at the peak
    count as a hit when any tied pixel is on the mask.

    Parameters
    ----------
    maps, masks
        ``(n, n_concepts, H, W)`` activation maps and boolean masks.
    tolerance
        Pixels by which masks are dilated before testing the peak (the usual
        15-pixel tolerance on 224-pixel images is about 4 on 64-pixel images).

    Returns
    -------
    ``(n_concepts,)`` hit rates; NaN for concepts present in no image.
    """
    m, k = _check_maps(maps, masks)
    if tolerance < 0:
        raise ConfigurationError(f"tolerance must be non-negative, got {tolerance}")
    if tolerance:
        struct = np.zeros((1, 1, 2 * tolerance + 1, 2 * tolerance + 1), bool)
        yy, xx = np.mgrid[-tolerance : tolerance + 1, -tolerance : tolerance + 1]
        struct[0, 0] = yy**2 + xx**2 <= tolerance**2
        k = binary_dilation(k, structure=struct)
    peak = m == m.max(axis=(2, 3), keepdims=True)
    hit = (peak & k).any(axis=(2, 3))
    present = np.asarray(masks, bool).any(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hit & present).sum(axis=0) / present.sum(axis=0)


def mask_iou(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per-concept mean IoU between the thresholded map and the mask.

    Each map is min-max normalised to ``[0, 1]`` and binarised at ``threshold``; a
    constant map selects nothing. Only images where the concept is present count.

    Returns
    -------
    ``(n_concepts,)`` mean IoU; NaN for concepts present in no image.
    """
    m, k = _check_maps(maps, masks)
    if not 0.0 <= threshold < 1.0:
        raise ConfigurationError(f"threshold must lie in [0, 1), got {threshold}")
    lo = m.min(axis=(2, 3), keepdims=True)
    span = m.max(axis=(2, 3), keepdims=True) - lo
    norm = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0)
    region = (norm > threshold) & (span > 0)
    inter = (region & k).sum(axis=(2, 3))
    union = (region | k).sum(axis=(2, 3))
    present = k.any(axis=(2, 3))
    iou = np.where(present, inter / np.maximum(union, 1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return iou.sum(axis=0) / present.sum(axis=0)
