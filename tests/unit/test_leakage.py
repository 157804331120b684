import numpy as np
import pytest

from cbm.exceptions import ValidationError
from cbm.metrics.leakage import binarise, leakage_check


def test_binarise_hand_computed():
    out = binarise(np.array([[0.5, -1.0], [0.0, 2.0]]), threshold=np.array([0.0, 1.0]))
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 1.0]])


def test_leakage_check_detects_information_in_soft_scores():
    # label = sign of the score's magnitude beyond the concept: |s| > 1, not s > 0
    rng = np.random.default_rng(0)
    s = rng.standard_normal((800, 1))
    y = (np.abs(s[:, 0]) > 1).astype(int)
    soft = np.hstack([s, s**2])  # the soft score carries |s| through its square
    table = leakage_check(soft[:400], y[:400], soft[400:], y[400:], threshold=0.0)
    acc = dict(zip(table["scores"], table["accuracy"], strict=True))
    assert acc["soft"] > 0.95
    assert acc["soft"] - acc["binarised"] > 0.2
    assert table.loc[table["scores"] == "soft", "gap_to_soft"].item() == 0.0


def test_leakage_check_random_rows_and_errors():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = rng.standard_normal((200, 3)) + y[:, None]
    r = rng.standard_normal((200, 3))
    table = leakage_check(s[:100], y[:100], s[100:], y[100:], r[:100], r[100:])
    assert table["scores"].tolist() == ["soft", "binarised", "random"]
    assert table["accuracy"].iloc[2] < table["accuracy"].iloc[0]
    with pytest.raises(ValidationError, match="both"):
        leakage_check(s, y, s, y, random_train=r)
