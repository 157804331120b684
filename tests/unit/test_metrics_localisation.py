import numpy as np
import pytest

from cbm.exceptions import ValidationError
from cbm.metrics.localisation import (
    concept_activation_maps,
    mask_iou,
    pointing_game,
    upsample_maps,
)


def test_activation_maps_are_cosines():
    dense = np.zeros((1, 1, 2, 2))
    dense[0, 0, 0] = [2.0, 0.0]
    dense[0, 0, 1] = [1.0, 1.0]
    maps = concept_activation_maps(dense, np.array([[1.0, 0.0], [0.0, 3.0]]))
    assert maps.shape == (1, 2, 1, 2)
    np.testing.assert_allclose(maps[0, :, 0, :], [[1.0, 2**-0.5], [0.0, 2**-0.5]])


def test_activation_maps_reject_dim_mismatch():
    with pytest.raises(ValidationError, match="dim"):
        concept_activation_maps(np.zeros((1, 2, 2, 3)), np.zeros((4, 2)))


def test_upsample_maps_shape_and_constant():
    up = upsample_maps(np.full((1, 1, 2, 2), 3.0), 8)
    assert up.shape == (1, 1, 8, 8)
    np.testing.assert_allclose(up, 3.0)


def _toy():
    maps = np.zeros((2, 2, 4, 4))
    masks = np.zeros((2, 2, 4, 4), bool)
    masks[0, 0, :2, :2] = True  # image 0, concept 0: top-left block
    maps[0, 0, 0, 1] = 1.0  # peak on it
    masks[1, 0, 2:, 2:] = True  # image 1, concept 0: bottom-right block
    maps[1, 0, 0, 0] = 1.0  # peak far away
    maps[1, 0, 2, 2] = 0.8
    return maps, masks  # concept 1 absent everywhere


def test_pointing_game_hand_computed():
    maps, masks = _toy()
    hits = pointing_game(maps, masks)
    assert hits[0] == pytest.approx(0.5) and np.isnan(hits[1])
    # a 2-pixel tolerance reaches (0, 0) -> (2, 2)? distance sqrt(8) > 2: still a miss
    assert pointing_game(maps, masks, tolerance=2)[0] == pytest.approx(0.5)
    assert pointing_game(maps, masks, tolerance=3)[0] == pytest.approx(1.0)


def test_mask_iou_hand_computed():
    maps, masks = _toy()
    # image 0: region = {(0,1)} (only pixel above 0.5), mask 4 px -> IoU 1/4
    # image 1: region = {(0,0), (2,2)}, mask 4 px, overlap 1 -> 1/5
    iou = mask_iou(maps, masks, threshold=0.5)
    assert iou[0] == pytest.approx((1 / 4 + 1 / 5) / 2) and np.isnan(iou[1])


def test_mask_iou_of_constant_map_is_zero():
    masks = np.ones((1, 1, 2, 2), bool)
    assert mask_iou(np.zeros((1, 1, 2, 2)), masks)[0] == 0.0


def test_upsample_maps_matches_bilinear_cell_centres():
    # 2 -> 4 pixels: centres of the output sit at 0.25, 0.75 ... of the input cells
    up = upsample_maps(np.array([[[[0.0, 4.0]]]]), (1, 4))
    np.testing.assert_allclose(up[0, 0, 0], [0.0, 1.0, 3.0, 4.0])
