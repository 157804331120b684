"""open_clip models behind the :class:`~cbm.backbones.base.Backbone` protocol.

Accepts what open_clip accepts: any registered model name with a pretrained tag
(``ViT-B-32`` + ``laion2b_s34b_b79k``), a local checkpoint file, or ``hf-hub:`` names,
plus a ``cache_dir`` for downloaded weights. With no arguments it loads the tiny CLIP
that ships with cbm, through exactly the same code path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cbm.backbones import tiny_clip
from cbm.backbones.base import resolve_device
from cbm.backbones.preprocess import check_image_array, resize_crop_normalise
from cbm.exceptions import ConfigurationError

DEFAULT_MODEL = tiny_clip.MODEL_NAME


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _state_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class OpenCLIPBackbone:
    """An open_clip image-text model.

    Parameters
    ----------
    model_name
        An open_clip model name (``open_clip.list_models()``), ``hf-hub:org/repo``, or
        ``"shapes-clip-rn"`` (the default, cbm's own tiny CLIP).
    pretrained
        A pretrained tag (``open_clip.list_pretrained()``), a local checkpoint path, or
        ``None``: the shipped weights for ``shapes-clip-rn``, random weights otherwise.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
    cache_dir
        Where open_clip keeps downloaded weights.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        pretrained: str | Path | None = None,
        device: str = "auto",
        cache_dir: str | Path | None = None,
    ) -> None:
        import open_clip

        tiny_clip.register()
        if model_name == DEFAULT_MODEL and pretrained is None:
            pretrained = tiny_clip.WEIGHTS_PATH
        if pretrained is not None and Path(pretrained).suffix and not Path(pretrained).exists():
            raise ConfigurationError(f"checkpoint file {pretrained} does not exist")
        self.device = resolve_device(device)
        known = set(open_clip.list_models())
        if not model_name.startswith("hf-hub:") and model_name not in known:
            raise ConfigurationError(
                f"unknown open_clip model {model_name!r}; see open_clip.list_models() "
                f"(e.g. {', '.join(sorted(known)[:4])}, ...)"
            )
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=str(pretrained) if pretrained is not None else None,
            device=self.device,
            cache_dir=str(cache_dir) if cache_dir is not None else None,
        )
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.model_name = model_name
        if pretrained is None:
            self.weights_id = f"random-init:{_state_sha256(model)[:16]}"
        elif Path(pretrained).is_file():
            self.weights_id = f"sha256:{file_sha256(Path(pretrained))}"
        else:
            self.weights_id = f"tag:{pretrained}"
        self.pretrained = str(pretrained) if pretrained is not None else None
        self.backbone_id = f"open_clip:{model_name}"
        visual = model.visual
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, tuple | list) else size)
        self.mean = tuple(
            float(v) for v in getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        )
        self.std = tuple(
            float(v) for v in getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        )
        with torch.no_grad():
            probe = torch.zeros(1, 3, self.image_size, self.image_size, device=self.device)
            self.embed_dim = int(model.encode_image(probe).shape[-1])
        self.preprocess_config: dict[str, Any] = {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": "shortest-side bicubic, centre crop",
        }

    def identity(self) -> dict[str, Any]:
        return {
            "backbone_id": self.backbone_id,
            "model_name": self.model_name,
            "pretrained": self.pretrained
            if self.pretrained is None or not Path(self.pretrained).is_file()
            else Path(self.pretrained).name,
            "weights_id": self.weights_id,
            "embed_dim": self.embed_dim,
            "preprocess": self.preprocess_config,
        }

    def _array_batch(self, images: np.ndarray) -> torch.Tensor:
        return resize_crop_normalise(images, self.image_size, self.mean, self.std, self.device)

    @torch.inference_mode()
    def encode_images(
        self, images: np.ndarray | Sequence[Any], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """Embed a uint8 ``(n, h, w, 3)`` array or a list of PIL images (unnormalised)."""
        from tqdm.auto import tqdm

        is_array = isinstance(images, np.ndarray)
        if is_array:
            check_image_array(np.asarray(images))
        n = len(images)
        out = np.empty((n, self.embed_dim), np.float32)
        for start in tqdm(
            range(0, n, batch_size), desc="embedding images", disable=not progress, unit="batch"
        ):
            chunk = images[start : start + batch_size]
            if is_array:
                x = self._array_batch(np.asarray(chunk))
            else:
                x = torch.stack([self.preprocess(im.convert("RGB")) for im in chunk]).to(
                    self.device
                )
            out[start : start + len(chunk)] = self.model.encode_image(x).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        texts = list(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[start : start + batch_size]).to(self.device)
            out.append(self.model.encode_text(tokens).float().cpu().numpy())
        if not out:
            return np.empty((0, self.embed_dim), np.float32)
        return np.concatenate(out)
