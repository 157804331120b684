import numpy as np
import pytest

from cbm.exceptions import ValidationError
from cbm.scores import CosineConceptScorer, random_directions


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((200, 16)), rng.standard_normal((5, 16))


def test_scores_are_standardised_on_training_data(data):
    X, C = data
    s = CosineConceptScorer(C, list("abcde")).fit(X).transform(X)
    np.testing.assert_allclose(s.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.std(0), 1, atol=1e-4)


def test_scores_are_cosines_up_to_affine_map(data):
    X, C = data
    s = CosineConceptScorer(C, standardise=False).fit(X).transform(X)
    cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (
        C / np.linalg.norm(C, axis=1, keepdims=True)
    ).T
    np.testing.assert_allclose(s, cos, atol=1e-6)
    # scale invariance: embeddings of any norm give the same scores
    np.testing.assert_allclose(
        CosineConceptScorer(C).fit(X).transform(3 * X),
        CosineConceptScorer(C).fit(X).transform(X),
        atol=1e-5,
    )


def test_feature_names_give_pandas_columns(data):
    pd = pytest.importorskip("pandas")
    X, C = data
    scorer = CosineConceptScorer(C, list("abcde")).set_output(transform="pandas")
    out = scorer.fit(X).transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list("abcde")


def test_wrong_dimension_names_both_sizes(data):
    X, C = data
    scorer = CosineConceptScorer(C).fit(X)
    with pytest.raises(ValidationError, match="dimension 8, but this scorer was fitted on 16"):
        scorer.transform(X[:, :8])


def test_nan_and_zero_rows_are_reported(data):
    X, C = data
    scorer = CosineConceptScorer(C).fit(X)
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValidationError, match=r"NaN.*\[3\]"):
        scorer.transform(bad)
    bad = X.copy()
    bad[7] = 0
    with pytest.raises(ValidationError, match="all-zero"):
        scorer.transform(bad)


def test_random_directions_are_unit_and_seeded():
    d = random_directions(10, 32, seed=1)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(d, random_directions(10, 32, seed=1))
    assert not np.array_equal(d, random_directions(10, 32, seed=2))
