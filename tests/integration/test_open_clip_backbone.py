"""The encoder protocol on real open_clip code: a random-weight ViT and our tiny CLIP."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cbm.backbones import Backbone, EmbeddingCache, OpenCLIPBackbone, embed_images, tiny_clip
from cbm.data import ShapesWorld
from cbm.exceptions import ConfigurationError, ValidationError

TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def vit_name(tmp_path_factory):
    import open_clip

    d = tmp_path_factory.mktemp("cfg")
    (d / "cbm-test-vit.json").write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(d)
    return "cbm-test-vit"


@pytest.fixture(scope="module")
def images():
    return ShapesWorld(seed=5).sample(6, "x").images


def test_random_weight_vit_follows_the_protocol(vit_name, images):
    torch.manual_seed(0)
    bb = OpenCLIPBackbone(vit_name, pretrained=None, device="cpu")
    assert isinstance(bb, Backbone)
    assert bb.embed_dim == 32 and bb.weights_id.startswith("random-init:")
    emb = bb.encode_images(images, batch_size=4)
    assert emb.shape == (6, 32) and emb.dtype == np.float32
    # arrays (resized in batched tensor code) and PIL images (open_clip's own transform)
    # agree closely
    pil = bb.encode_images([Image.fromarray(im) for im in images])
    cos = (emb * pil).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(pil, axis=1)
    assert cos.min() > 0.99
    txt = bb.encode_texts(["a red circle", "a blue star", "x"], batch_size=2)
    assert txt.shape == (3, 32)


def test_local_checkpoint_file_loads_and_is_identified_by_hash(vit_name, images, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    a = OpenCLIPBackbone(vit_name, pretrained=None, device="cpu")
    path = tmp_path / "ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in a.model.state_dict().items()}, str(path))
    b = OpenCLIPBackbone(vit_name, pretrained=path, device="cpu")
    assert b.weights_id.startswith("sha256:")
    np.testing.assert_allclose(a.encode_images(images), b.encode_images(images), atol=1e-5)
    assert b.identity()["pretrained"] == "ckpt.safetensors"


def test_unknown_model_and_missing_file_are_explained(vit_name):
    with pytest.raises(ConfigurationError, match="unknown open_clip model"):
        OpenCLIPBackbone("no-such-model", device="cpu")
    with pytest.raises(ConfigurationError, match="does not exist"):
        OpenCLIPBackbone(vit_name, pretrained="/nonexistent/weights.safetensors", device="cpu")


def test_bad_image_arrays_are_refused(vit_name):
    bb = OpenCLIPBackbone(vit_name, device="cpu")
    with pytest.raises(ValidationError, match="uint8"):
        bb.encode_images(np.zeros((2, 32, 32, 3), np.float32))


def test_shipped_tiny_clip_loads_through_open_clip(images, tmp_path):
    bb = OpenCLIPBackbone(device="cpu")
    assert bb.backbone_id == "open_clip:shapes-clip-rn"
    assert bb.weights_id.startswith("sha256:")
    cache = EmbeddingCache(tmp_path)
    a = embed_images(bb, images, cache)
    b = embed_images(bb, images, cache)
    np.testing.assert_array_equal(a, b)
    assert cache.hits == 1


def test_shipped_tiny_clip_understands_every_dimension():
    """The README's claim: >= 90% zero-shot on every dimension, re-measured here."""
    bb = OpenCLIPBackbone(device="cpu")
    acc = tiny_clip.zero_shot_accuracy(bb.encode_images, bb.encode_texts, n=600, seed=777)
    assert set(acc) == {"shape", "colour", "size", "position", "texture", "background"}
    assert min(acc.values()) >= 0.9, acc
