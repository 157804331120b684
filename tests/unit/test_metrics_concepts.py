import numpy as np
import pytest

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.metrics.concepts import (
    class_concept_frequency,
    concept_average_precision,
    concept_existence,
    concept_health,
    importance_alignment,
)


def test_average_precision_hand_computed():
    truth = np.array([[1, 1], [0, 1], [1, 1], [0, 1]])
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.1, 0.0]])
    ap = concept_average_precision(truth, scores)
    # ranking 1,0,1,0: precision at the two hits is 1/1 and 2/3
    assert ap[0] == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(ap[1])  # always present: not informative


def test_class_concept_frequency_hand_computed():
    truth = np.array([[1, 0], [0, 0], [1, 1]])
    freq = class_concept_frequency(truth, np.array([0, 0, 1]), n_classes=3)
    np.testing.assert_allclose(freq[:2], [[0.5, 0.0], [1.0, 1.0]])
    assert np.isnan(freq[2]).all()


def test_importance_alignment_hand_computed():
    w = np.array([[2.0, 1.0, 0.0, -1.0]])
    f = np.array([[0.9, 0.1, 0.8, 0.0]])
    row = importance_alignment(w, f, class_names=["a"]).iloc[0]
    assert row["n_positive"] == 2
    assert row["precision"] == pytest.approx(0.5)  # of {0, 1} only 0 is typical
    assert row["recall"] == pytest.approx(0.5)  # of typical {0, 2} only 0 is used
    # ranks of w: 4 3 2 1; of f: 4 2 3 1 -> rho = 1 - 6 * 2 / (4 * 15)
    assert row["spearman"] == pytest.approx(0.8)


def test_concept_existence_hand_computed():
    contrib = np.array([[3.0, 1.0, 2.0, 0.0], [0.0, -1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]])
    scores = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]])
    truth = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    # image 0 claims 0 > 2 > 1 (present, present, absent); image 1 claims nothing;
    # image 2 claims only 1 (absent): concept 0 has a negative score so is no claim
    got = concept_existence(contrib, scores, truth, ks=(1, 3))
    assert got[1] == pytest.approx((1 + 0) / 2)
    assert got[3] == pytest.approx((2 / 3 + 0) / 2)


def test_concept_existence_rejects_bad_k():
    with pytest.raises(ConfigurationError):
        concept_existence(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)), ks=(0,))


def test_concept_health_flags():
    s = np.array([[0.0, 1.0, 2.0, 0.0, -1.0], [0.0, 2.0, 4.0, 1.0, -1.0], [0.0, 3.0, 6.0, 0.0, -2]])
    h = concept_health(s, names=["a", "b", "c", "d", "e"])
    assert h["constant"].tolist() == [True, False, False, False, False]
    assert h["dead"].tolist() == [True, False, False, False, True]
    assert h["duplicate_of"].tolist() == ["", "", "b", "", ""]
    assert h["active_rate"].tolist() == pytest.approx([0, 1, 1, 1 / 3, 0])


def test_concept_health_rejects_name_mismatch():
    with pytest.raises(ValidationError, match="2 names for 3"):
        concept_health(np.zeros((3, 3)), names=["a", "b"])
