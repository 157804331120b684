"""One entry point from a backbone name on the command line to a Backbone object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EFFNET_NAME = "efficientnet-lite0"


def open_backbone(name: str, pretrained: str | None = None, device: str = "auto") -> Any:
    """Build a backbone from a short spec.

    Parameters
    ----------
    name
        ``"efficientnet-lite0"`` (``pretrained``: optional ``.pth`` file);
        ``"hf:<folder or org/model>"`` for transformers CLIP/SigLIP; anything else is an
        open_clip model name (``pretrained``: tag or checkpoint file).
    pretrained
        Weights: a tag or file, depending on the kind.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    """
    if name == EFFNET_NAME:
        from cbm.backbones.efficientnet_lite import EfficientNetLite0Backbone

        return EfficientNetLite0Backbone(pretrained, device=device)
    if name.startswith("hf:"):
        from cbm.backbones.hf_clip import HFCLIPBackbone

        return HFCLIPBackbone(name[3:], device=device)
    from cbm.backbones.open_clip_backbone import OpenCLIPBackbone

    return OpenCLIPBackbone(
        name,
        pretrained=Path(pretrained) if pretrained and Path(pretrained).is_file() else pretrained,
        device=device,
    )
