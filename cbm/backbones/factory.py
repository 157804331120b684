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


def reopen_backbone(identity: dict[str, Any], device: str = "auto") -> Any:
    """The backbone a saved model's images were embedded with, checked by weights id.

    ``identity`` is a model card's ``backbone`` entry (``Backbone.identity()``). The
    shipped tiny CLIP is found by name; other open_clip models by their recorded tag.
    Raises :class:`~cbm.exceptions.ArtefactError` when the card names no open_clip model
    or when the weights found differ from the ones the model was fitted on.
    """
    from cbm.backbones.open_clip_backbone import OpenCLIPBackbone
    from cbm.backbones.tiny_clip import MODEL_NAME
    from cbm.exceptions import ArtefactError

    name = identity.get("model_name")
    if not name:
        raise ArtefactError(
            f"the model's backbone {identity.get('backbone_id')!r} records no open_clip "
            "model_name, so images cannot be embedded the way its training images were"
        )
    pretrained = None if name == MODEL_NAME else identity.get("pretrained")
    backbone = OpenCLIPBackbone(name, pretrained=pretrained, device=device)
    if backbone.weights_id != identity.get("weights_id"):
        raise ArtefactError(
            f"backbone weights differ from the model's ({backbone.weights_id} vs "
            f"{identity.get('weights_id')}): images would be embedded differently from training"
        )
    return backbone
