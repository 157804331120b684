import numpy as np
import pytest

from cbm.data import CONCEPT_DIMENSION, CONCEPTS, DIMENSIONS, ClassRule, ShapesWorld, Shortcut
from cbm.exceptions import ConfigurationError


@pytest.fixture(scope="module")
def batch():
    return ShapesWorld(seed=3).sample(300, "train", masks=True)


def test_same_seed_and_split_give_identical_images():
    a = ShapesWorld(seed=1).sample(50, "train")
    b = ShapesWorld(seed=1).sample(50, "train")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.concepts, b.concepts)


def test_splits_and_seeds_differ():
    w = ShapesWorld(seed=1)
    assert not np.array_equal(w.sample(50, "train").images, w.sample(50, "test").images)
    assert not np.array_equal(
        w.sample(50, "train").images, ShapesWorld(seed=2).sample(50, "train").images
    )


def test_each_dimension_has_exactly_one_true_concept(batch):
    assert batch.concepts.shape == (300, len(CONCEPTS))
    dims = np.array(CONCEPT_DIMENSION)
    for dim in DIMENSIONS:
        np.testing.assert_array_equal(batch.concepts[:, dims == dim].sum(axis=1), 1)


def test_labels_follow_the_class_rules(batch):
    world = ShapesWorld(seed=3)
    for i in range(len(batch)):
        rule = world.rules[batch.labels[i]]
        for dim, allowed in rule.allowed.items():
            assert DIMENSIONS[dim][batch.values[dim][i]] in allowed


def test_masks_agree_with_concepts(batch):
    m = batch.masks
    assert m.shape == (300, len(CONCEPTS), 64, 64)
    present = batch.concepts.astype(bool)
    nonempty = m.any(axis=(2, 3))
    np.testing.assert_array_equal(nonempty, present)
    is_bg = np.array([d == "background" for d in CONCEPT_DIMENSION])
    obj = m[np.arange(300), np.argmax(present & ~is_bg, axis=1)]
    bg = m[np.arange(300), np.argmax(present & is_bg, axis=1)]
    np.testing.assert_array_equal(obj, ~bg)  # object and background tile the image
    # larger objects cover more pixels
    size = batch.values["size"]
    area = obj.sum(axis=(1, 2))
    assert area[size == 1].mean() > 2.5 * area[size == 0].mean()


def test_object_mask_sits_in_its_quadrant(batch):
    ys, xs = np.mgrid[0:64, 0:64]
    m = batch.masks[:, 0:4].any(axis=1)
    cy = (m * ys).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    cx = (m * xs).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    pos = batch.values["position"]
    assert ((cx < 32) == (pos % 2 == 0)).all()
    assert ((cy < 32) == (pos < 2)).all()


def test_pixels_show_the_colour(batch):
    obj = batch.masks[:, 0:4].any(axis=1)
    solid = batch.values["texture"] == 0
    red = batch.values["colour"] == 0
    mean_rgb = np.array([batch.images[i][obj[i]].mean(axis=0) for i in np.flatnonzero(solid & red)])
    assert (mean_rgb[:, 0] > mean_rgb[:, 1] + 80).all()


def test_overlapping_rules_are_refused():
    rules = (ClassRule("a", {"shape": ("circle",)}), ClassRule("b", {"colour": ("red",)}))
    with pytest.raises(ConfigurationError, match="overlap"):
        ShapesWorld(rules=rules)


def test_unknown_values_are_refused():
    with pytest.raises(ConfigurationError, match="not a value of 'shape'"):
        ShapesWorld(
            rules=(ClassRule("a", {"shape": ("hexagon",)}), ClassRule("b", {"shape": ("star",)}))
        )


def test_shortcut_only_in_training_split():
    world = ShapesWorld(seed=0, shortcut=Shortcut("sun", "dark", 1.0))
    train = world.sample(2000, "train")
    test = world.sample(2000, "test")
    sun = world.class_names.index("sun")
    assert (train.values["background"][train.labels == sun] == 0).all()
    assert (train.values["background"][train.labels != sun] != 0).all()
    frac_dark_test = (test.values["background"][test.labels == sun] == 0).mean()
    assert 0.2 < frac_dark_test < 0.5


def test_fingerprint_changes_with_config():
    a = ShapesWorld(seed=0).fingerprint(10, "train")
    assert a == ShapesWorld(seed=0).fingerprint(10, "train")
    assert a != ShapesWorld(seed=0, noise=7).fingerprint(10, "train")
    assert a != ShapesWorld(seed=0).fingerprint(11, "train")
