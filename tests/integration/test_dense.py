"""Dense per-location embeddings agree with encode_image on real open_clip towers."""

import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP

from cbm.backbones import tiny_clip
from cbm.backbones.dense import dense_embeddings
from cbm.exceptions import ConfigurationError


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@torch.no_grad()
def test_modified_resnet_pool_matches_encode_image():
    tiny_clip.register()
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_clip.MODEL_NAME).eval()
    x = torch.randn(3, 3, 64, 64)
    dense, pooled = dense_embeddings(model.visual, x)
    assert dense.shape == (3, 2, 2, 64)
    torch.testing.assert_close(pooled, model.encode_image(x), atol=1e-5, rtol=1e-4)
    # a one-cell grid: the pool over mean token + that cell; the cell's dense
    # embedding is the pool applied to that cell alone, so it differs from the
    # pooled one only through the mean token (identical content here).
    up_dense, _ = dense_embeddings(model.visual, torch.randn(1, 3, 128, 128))
    assert up_dense.shape == (1, 4, 4, 64)


@torch.no_grad()
def test_resnet_dense_is_the_pool_on_each_location_alone():
    tiny_clip.register()
    torch.manual_seed(1)
    visual = open_clip.create_model(tiny_clip.MODEL_NAME).visual.eval()
    x = torch.randn(2, 3, 64, 64)
    dense, _ = dense_embeddings(visual, x)
    feats = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(x)))))
    pool = visual.attnpool
    # location (0, 1) is flattened index 1, positional row 2
    token = feats[:, :, 0, 1] + pool.positional_embedding[2]
    expected = pool.c_proj(pool.v_proj(token))
    torch.testing.assert_close(dense[:, 0, 1], expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_vit_tokens_match_encode_image():
    torch.manual_seed(0)
    model = CLIP(
        embed_dim=32,
        vision_cfg={"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
        text_cfg={"context_length": 16, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1},
    ).eval()
    x = torch.randn(2, 3, 32, 32)
    dense, pooled = dense_embeddings(model.visual, x)
    assert dense.shape == (2, 4, 4, 32)
    torch.testing.assert_close(pooled, model.encode_image(x))
    assert model.visual.output_tokens is False  # restored
    assert np.isfinite(dense.numpy()).all()


def test_unknown_tower_is_refused():
    with pytest.raises(ConfigurationError, match="ModifiedResNet"):
        dense_embeddings(torch.nn.Linear(2, 2), torch.zeros(1, 2))
