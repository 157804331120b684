"""Image/text encoders behind one protocol, batched extraction and an embedding cache."""

from cbm.backbones.base import Backbone, resolve_device
from cbm.backbones.cache import EmbeddingCache, array_fingerprint, embed_images
from cbm.backbones.efficientnet_lite import EfficientNetLite0Backbone
from cbm.backbones.hf_clip import HFCLIPBackbone
from cbm.backbones.open_clip_backbone import DEFAULT_MODEL, OpenCLIPBackbone

__all__ = [
    "DEFAULT_MODEL",
    "Backbone",
    "EfficientNetLite0Backbone",
    "EmbeddingCache",
    "HFCLIPBackbone",
    "OpenCLIPBackbone",
    "array_fingerprint",
    "embed_images",
    "resolve_device",
]
