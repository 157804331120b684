"""Invariants that must hold for any input (hypothesis)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cbm.concepts import ConceptBank
from cbm.heads import SparseLinearHead, nec
from cbm.model import ConceptBottleneckModel
from cbm.scores import CosineConceptScorer

finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(
    X=arrays(np.float32, st.tuples(st.integers(5, 40), st.just(6)), elements=finite),
    C=arrays(np.float32, st.tuples(st.integers(1, 5), st.just(6)), elements=finite),
)
def test_scores_are_standardised_on_training_data(X, C):
    if (np.linalg.norm(X, axis=1) < 1e-3).any() or (np.linalg.norm(C, axis=1) < 1e-3).any():
        return  # zero vectors have no direction and are refused elsewhere
    scores = CosineConceptScorer(C).fit(X).transform(X)
    assert np.isfinite(scores).all()
    spread = scores.std(0)
    varying = spread > 1e-3
    np.testing.assert_allclose(scores.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(spread[varying], 1, atol=1e-2)


@settings(max_examples=60, deadline=None)
@given(
    coef=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 12)),
        elements=st.sampled_from([0.0, 0.0, -1.5, 2.0, 1e-9]),
    )
)
def test_nec_counts_nonzero_weights_per_class(coef):
    assert nec(coef) == np.count_nonzero(coef) / coef.shape[0]
    assert 0 <= nec(coef) <= coef.shape[1]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 6),
    classes=st.integers(2, 4),
    target=st.floats(0.5, 4.0),
)
def test_save_load_identity_and_nec_budget(tmp_path_factory, seed, k, classes, target):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((80, 5))
    bank = ConceptBank("p", tuple(f"c{i}" for i in range(k)))
    backbone = {"backbone_id": "t", "weights_id": "sha256:0", "embed_dim": 5}
    y = np.arange(80) % classes
    model = ConceptBottleneckModel(
        bank,
        rng.standard_normal((k, 5)),
        backbone,
        tuple(f"k{i}" for i in range(classes)),
        SparseLinearHead(target_nec=target, search_steps=4),
    )
    model.fit(X, y)
    assert model.nec <= target + 1e-9
    d = model.save(tmp_path_factory.mktemp("m") / "model")
    back = ConceptBottleneckModel.load(d)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_array_equal(back.weights, model.weights)
    np.testing.assert_array_equal(back.concept_scores(X), model.concept_scores(X))
