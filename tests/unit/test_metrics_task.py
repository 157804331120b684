import numpy as np
import pytest

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.metrics.task import (
    accuracy_at_nec,
    accuracy_nec_curve,
    balanced_accuracy,
    effective_concepts,
    expected_calibration_error,
    reliability_table,
)


def test_balanced_accuracy_hand_computed():
    # class 0: 2 of 3 right; class 1: 1 of 1 right -> (2/3 + 1) / 2
    assert balanced_accuracy([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(5 / 6)


def test_balanced_accuracy_rejects_length_mismatch():
    with pytest.raises(ValidationError, match="3 rows but there are 2"):
        balanced_accuracy([0, 1], [0, 1, 1])


def test_ece_hand_computed_two_bins():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    # confidences .9 .6 .8 .7, all in bin [.5, 1]; correct: yes, no, yes, no
    # |acc - conf| = |0.5 - 0.75| = 0.25
    assert expected_calibration_error(y, proba, n_bins=2) == pytest.approx(0.25)
    # ten bins: .6 (wrong), .7 (wrong), .8 (right), .9 (right) each alone
    # (|0-.6| + |0-.7| + |1-.8| + |1-.9|) / 4 = 1.6 / 4
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(0.4)


def test_ece_is_zero_for_perfectly_calibrated_bins():
    y = np.array([0, 0, 0, 1])
    proba = np.tile([0.75, 0.25], (4, 1))
    assert expected_calibration_error(y, proba) == pytest.approx(0.0)


def test_reliability_table_keeps_empty_bins():
    table = reliability_table([0], np.array([[1.0, 0.0]]), n_bins=4)
    assert table["count"].tolist() == [0, 0, 0, 1]
    assert table["accuracy"].iloc[-1] == 1.0 and np.isnan(table["accuracy"].iloc[0])


def test_effective_concepts_hand_computed():
    c = np.array(
        [
            [3.0, -1.0, 0.0, 0.0],  # 3 of 4 carries 75%
            [0.0, 0.0, 0.0, 0.0],  # no contribution
            [1.0, 1.0, 1.0, 1.0],  # needs three for 75%
            [0.5, 0.0, 0.0, -9.5],  # the negative one alone carries 95%
        ]
    )
    assert effective_concepts(c, mass=0.75).tolist() == [1, 0, 3, 1]
    assert effective_concepts(c, mass=1.0).tolist() == [2, 0, 4, 2]


def test_effective_concepts_rejects_bad_mass():
    with pytest.raises(ConfigurationError, match="mass"):
        effective_concepts(np.ones((1, 2)), mass=0.0)


def test_accuracy_nec_curve_grows_with_C_and_is_queried_at_nec():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    X = rng.standard_normal((300, 8))
    X[:, :3] += 2.0 * np.eye(3)[y]  # three informative concepts
    curve = accuracy_nec_curve(X[:200], y[:200], X[200:], y[200:], Cs=(0.005, 0.05, 1.0))
    assert list(curve.columns) == ["C", "nec", "accuracy"]
    assert curve["nec"].is_monotonic_increasing
    assert curve["accuracy"].iloc[-1] > 0.8
    assert accuracy_at_nec(curve, curve["nec"].max()) == curve["accuracy"].max()
    assert np.isnan(accuracy_at_nec(curve, -1.0))
