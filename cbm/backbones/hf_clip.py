"""Hugging Face ``transformers`` CLIP and SigLIP models behind the Backbone protocol.

Loads from a local directory written by ``save_pretrained`` (or a hub name, when the
machine may download and ``local_files_only=False``). Install the ``[hf]`` extra.

Images go through the same batched tensor preprocessing as the open_clip backbone
(shortest side bicubic, centre crop, normalise), using the image size, mean and std
of the model's ``preprocessor_config.json`` when it has one; the values used are
recorded in ``preprocess_config`` and so in every cache key and saved model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cbm.backbones.base import resolve_device
from cbm.backbones.open_clip_backbone import file_sha256
from cbm.backbones.preprocess import iter_preprocessed
from cbm.exceptions import ConfigurationError

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def directory_weights_id(folder: Path) -> str:
    """sha256 over the names and hashes of every weight file in a model directory."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ConfigurationError(f"{folder} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(folder)}:{file_sha256(p)};".encode())
    return f"sha256:{h.hexdigest()}"


def _features(out: Any) -> torch.Tensor:
    """transformers < 5 returns a tensor; 5.x returns an output whose pooler is projected."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFCLIPBackbone:
    """A ``transformers`` CLIPModel or SiglipModel.

    Parameters
    ----------
    model
        A local directory from ``save_pretrained`` or a hub name (``org/name``).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    local_files_only
        Never touch the network (default). Set ``False`` to let transformers download.
    revision
        Hub revision, recorded in the weights identity of hub models.
    """

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        local_files_only: bool = True,
        revision: str | None = None,
    ) -> None:
        try:
            from transformers import AutoConfig, AutoModel, AutoTokenizer
        except ImportError as err:
            raise ConfigurationError(
                "Hugging Face backbones need transformers: "
                "pip install -e '.[hf]' in the cbm checkout"
            ) from err
        source = str(model)
        is_dir = Path(source).is_dir()
        looks_like_hub_name = source.count("/") == 1 and not source.startswith((".", "/", "~"))
        if not is_dir and not looks_like_hub_name:
            raise ConfigurationError(
                f"{source} is not a model directory; pass a folder written by save_pretrained"
                " or a hub name 'org/model' (downloaded with local_files_only=False)"
            )
        kwargs: dict[str, Any] = {"local_files_only": local_files_only, "revision": revision}
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
            net = AutoModel.from_pretrained(source, **kwargs)
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise ConfigurationError(
                f"cannot load a CLIP/SigLIP model from {source}: {err}"
            ) from err
        self.model_type = str(config.model_type)
        if not hasattr(net, "get_image_features") or not hasattr(net, "get_text_features"):
            raise ConfigurationError(
                f"{source} is a {self.model_type!r} model, not an image-text model such as "
                "CLIP or SigLIP"
            )
        self.device = resolve_device(device)
        self.model = net.eval().to(self.device)
        self.source = Path(source).name if is_dir else source
        self.weights_id = (
            directory_weights_id(Path(source)) if is_dir else f"hf:{source}@{revision or 'main'}"
        )
        self.backbone_id = f"hf:{self.model_type}:{self.source}"
        self.image_size, mean, std = self._image_settings(Path(source) if is_dir else None, config)
        self.mean, self.std = tuple(mean), tuple(std)
        self.text_padding = "max_length" if "siglip" in self.model_type else "longest"
        self.text_max_length = int(getattr(config.text_config, "max_position_embeddings", 77))
        self.preprocess_config: dict[str, Any] = {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": "shortest-side bicubic, centre crop",
        }
        with torch.inference_mode():
            probe = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
            self.embed_dim = int(
                _features(self.model.get_image_features(pixel_values=probe)).shape[-1]
            )

    def _image_settings(
        self, folder: Path | None, config: Any
    ) -> tuple[int, Sequence[float], Sequence[float]]:
        size = int(config.vision_config.image_size)
        siglip = "siglip" in self.model_type
        mean: Sequence[float] = (0.5, 0.5, 0.5) if siglip else OPENAI_MEAN
        std: Sequence[float] = (0.5, 0.5, 0.5) if siglip else OPENAI_STD
        cfg_path = folder / "preprocessor_config.json" if folder is not None else None
        if cfg_path is not None and cfg_path.is_file():
            pre = json.loads(cfg_path.read_text())
            mean = [float(v) for v in pre.get("image_mean", mean)]
            std = [float(v) for v in pre.get("image_std", std)]
        return size, mean, std

    def identity(self) -> dict[str, Any]:
        return {
            "backbone_id": self.backbone_id,
            "model": self.source,
            "weights_id": self.weights_id,
            "embed_dim": self.embed_dim,
            "preprocess": self.preprocess_config,
        }

    @torch.inference_mode()
    def encode_images(
        self, images: np.ndarray | Sequence[Any], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """Embed uint8 ``(n, h, w, 3)`` images or PIL images: ``(n, embed_dim)``."""
        out = np.empty((len(images), self.embed_dim), np.float32)
        for start, x in iter_preprocessed(
            images, batch_size, self.image_size, self.mean, self.std, self.device, progress
        ):
            feats = _features(self.model.get_image_features(pixel_values=x))
            out[start : start + len(x)] = feats.float().cpu().numpy()
        return out

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed texts with the model's own tokenizer: ``(n, embed_dim)``."""
        texts = list(texts)
        out = np.empty((len(texts), self.embed_dim), np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            tokens = self.tokenizer(
                chunk,
                padding=self.text_padding,
                truncation=True,
                max_length=self.text_max_length,
                return_tensors="pt",
            ).to(self.device)
            feats = _features(self.model.get_text_features(**tokens))
            out[start : start + len(chunk)] = feats.float().cpu().numpy()
        return out
