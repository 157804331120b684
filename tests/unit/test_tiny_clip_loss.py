import numpy as np
import torch
import torch.nn.functional as F

from cbm.backbones.tiny_clip import multi_positive_loss
from cbm.data import ShapesWorld
from cbm.data.captions import caption, concept_prompt, random_captions


def test_loss_reduces_to_clip_loss_with_diagonal_positives():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(8, 5), dim=1)
    b = F.normalize(torch.randn(8, 5), dim=1)
    scale = torch.tensor(10.0)
    logits = scale * a @ b.T
    target = torch.arange(8)
    clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    ours = multi_positive_loss(a, b, torch.eye(8, dtype=torch.bool), scale)
    torch.testing.assert_close(ours, clip)


def test_more_positives_never_increase_the_loss():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(8, 5), dim=1)
    b = F.normalize(torch.randn(8, 5), dim=1)
    eye = torch.eye(8, dtype=torch.bool)
    more = eye.clone()
    more[0, 1] = more[1, 0] = True
    s = torch.tensor(5.0)
    assert multi_positive_loss(a, b, more, s) <= multi_positive_loss(a, b, eye, s)


def test_captions_name_only_true_concepts():
    batch = ShapesWorld(seed=0).sample(100, "c")
    texts, required = random_captions(batch.values, np.random.default_rng(0))
    assert (required <= batch.concepts).all()
    assert required.sum(1).min() >= 1
    assert caption({"colour": "red", "shape": "star"}) == "a photo of a red star"
    assert concept_prompt("object at top left") == "a photo of an object in the top left"
