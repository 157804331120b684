"""The encoder protocol every backbone implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Backbone(Protocol):
    """An image (and optionally text) encoder into one embedding space.

    Attributes
    ----------
    backbone_id
        Human-readable identity, e.g. ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``.
    weights_id
        Identity of the weights (a file hash or a pretrained tag): part of every
        cache key and saved model.
    embed_dim
        Dimension of the embeddings.
    preprocess_config
        JSON-able description of the image preprocessing.
    """

    backbone_id: str
    weights_id: str
    embed_dim: int
    preprocess_config: dict[str, Any]

    def encode_images(
        self, images: np.ndarray | Sequence[Any], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """Embed images: a uint8 ``(n, h, w, 3)`` array or a sequence of PIL images."""
        ...

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed texts (raises for image-only backbones)."""
        ...

    def identity(self) -> dict[str, Any]:
        """Everything that determines the embeddings, for cache keys and model cards."""
        ...


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple MPS, then CPU; anything else is passed to torch."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)
