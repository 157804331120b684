"""Concept activation maps for the workbench's Image view.

Where in one image does a concept light up? The backbone's per-location embeddings
(:mod:`cbm.backbones.dense`) are compared with the concept's text embedding
(:func:`cbm.metrics.localisation.concept_activation_maps`) and put on the concept
score's scale with the model's own standardisation, so a cell reads like the image's
concept score would if that cell were the whole image. Backbones without patch tokens
(EfficientNet, Hugging Face CLIP, stored embeddings) and SAE scorers give no map; the
page then says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cbm.exceptions import CBMError, ConfigurationError, ValidationError
from cbm.model import ConceptBottleneckModel
from cbm.scores.cosine import CosineConceptScorer

HOT = np.array([255.0, 200.0, 0.0])  # where the concept is strongest
COLD = np.array([40.0, 40.0, 160.0])  # where it is weakest


@dataclass(frozen=True)
class CaseMaps:
    """Every concept's activation map over one image.

    Attributes
    ----------
    values
        ``(n_concepts, gh, gw)`` standardised per-location concept scores.
    upscale
        The enlargement applied before the image tower (1 = the native grid).
    """

    values: np.ndarray
    upscale: int

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.values.shape[1]), int(self.values.shape[2])


def maps_unavailable(model: ConceptBottleneckModel, backbone: Any) -> str | None:
    """Why this model gives no concept activation maps, or ``None`` when it does."""
    if not isinstance(model.scorer, CosineConceptScorer):
        return (
            "its concept scores are not cosines to concept text embeddings (an SAE scorer), "
            "so there is no per-location score to draw"
        )
    visual = getattr(getattr(backbone, "model", None), "visual", None)
    resnet = hasattr(visual, "attnpool") and hasattr(visual, "layer4")
    vit = hasattr(visual, "grid_size") and hasattr(visual, "transformer")
    if visual is None or not (resnet or vit):
        name = model.backbone.get("backbone_id", "unknown")
        return (
            f"its backbone ({name}) gives no patch tokens: concept maps need an open_clip "
            "ResNet (attention pool) or ViT image tower"
        )
    return None


def case_concept_maps(
    model: ConceptBottleneckModel, backbone: Any, image: np.ndarray, upscale: int = 1
) -> CaseMaps:
    """Activation maps of every concept over one ``(h, w, 3)`` uint8 image.

    Raises
    ------
    ConfigurationError
        When the model or backbone gives no maps (the reason of :func:`maps_unavailable`).
    """
    from cbm.backbones.dense import dense_image_embeddings
    from cbm.metrics.localisation import concept_activation_maps

    reason = maps_unavailable(model, backbone)
    if reason is not None:
        raise ConfigurationError(f"no concept activation map: {reason}")
    arr = np.array(image, copy=True)  # torch wants a writable array
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValidationError(f"need one uint8 (h, w, 3) image, got {arr.dtype} {arr.shape}")
    try:
        dense, _ = dense_image_embeddings(backbone, arr[None], batch_size=1, upscale=upscale)
    except (RuntimeError, ValueError) as err:
        raise CBMError(f"the backbone could not compute per-location embeddings: {err}") from err
    cos = concept_activation_maps(dense, model.concept_embeddings)[0]  # (k, gh, gw)
    scorer = model.scorer
    mean = np.asarray(getattr(scorer, "mean_", np.zeros(cos.shape[0])), np.float64)
    scale = np.asarray(getattr(scorer, "scale_", np.ones(cos.shape[0])), np.float64)
    return CaseMaps((cos - mean[:, None, None]) / scale[:, None, None], int(upscale))


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The image with one ``(gh, gw)`` map blended over it (weakest blue, strongest yellow).

    The map is bilinearly upsampled to the image and scaled to its own min..max, so it
    shows *where* the concept is strongest in this image, not how strong it is.
    """
    from cbm.metrics.localisation import upsample_maps

    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    up = upsample_maps(np.asarray(values, np.float64), (h, w))
    lo, hi = float(up.min()), float(up.max())
    t = (up - lo) / (hi - lo) if hi > lo else np.full_like(up, 0.5)
    colour = COLD + t[..., None] * (HOT - COLD)
    out = (1 - alpha) * img + alpha * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
