"""Properties users rely on, checked on many generated cases (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from intervention_world import make_world

from cbm.interventions import (
    OPERATIONS,
    STRATEGIES,
    Edit,
    Intervener,
    InterventionValues,
    apply_edits,
    edit_prediction,
    intervene,
)

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


@pytest.fixture(scope="module")
def world():
    model, train, test = make_world(n_train=600, n_test=500, seed=1)
    values = InterventionValues.from_ground_truth(
        model.concept_scores(train.embeddings), train.concepts
    )
    scores = model.concept_scores(test.embeddings)
    return model, test, values, scores


def _model_state(model):
    return [
        model.head.coef_.copy(),
        model.head.intercept_.copy(),
        model.scorer.mean_.copy(),
        model.scorer.scale_.copy(),
        model.concept_embeddings.copy(),
    ]


@SETTINGS
@given(
    fraction=st.floats(0.05, 1.0),
    seed=st.integers(0, 10_000),
    granularity=st.sampled_from(["concept", "group"]),
)
def test_true_values_never_hurt_on_average(world, fraction, seed, granularity):
    """Setting any random set of units to their true values lowers the mean loss."""
    model, test, values, scores = world
    iv = Intervener(model, values, granularity=granularity)
    rng = np.random.default_rng(seed)
    picked_units = rng.random((scores.shape[0], len(iv.units))) < fraction
    mask = (picked_units.astype(float) @ iv.units.membership) > 0
    after = intervene(scores, mask, values.targets(test.concepts))
    rows = np.arange(len(test.labels))
    nll_before = -np.log(model.proba_from_scores(scores)[rows, test.labels]).mean()
    nll_after = -np.log(model.proba_from_scores(after)[rows, test.labels]).mean()
    err_before = (model.proba_from_scores(scores).argmax(1) != test.labels).mean()
    err_after = (model.proba_from_scores(after).argmax(1) != test.labels).mean()
    assert nll_after <= nll_before
    assert err_after <= err_before


@SETTINGS
@given(
    strategy=st.sampled_from(STRATEGIES),
    budget=st.integers(0, 20),
    seed=st.integers(0, 100),
)
def test_informed_or_not_true_value_interventions_do_not_raise_the_error(
    world, strategy, budget, seed
):
    model, test, values, scores = world
    sel = Intervener(model, values).select(
        scores[:200],
        strategy,
        budget,
        values.targets(test.concepts[:200]),
        test.labels[:200],
        seed=seed,
    )
    assert sel.errors is not None and sel.errors[-1] <= sel.errors[0]


@SETTINGS
@given(
    rows=st.integers(1, 30),
    strategy=st.sampled_from(STRATEGIES),
    granularity=st.sampled_from(["concept", "group"]),
)
def test_an_empty_intervention_changes_nothing(world, rows, strategy, granularity):
    model, test, values, scores = world
    s = scores[:rows]
    np.testing.assert_array_equal(apply_edits(s, [], values), s)
    np.testing.assert_array_equal(intervene(s, np.zeros(s.shape, bool), 99.0), s)
    iv = Intervener(model, values, granularity=granularity)
    sel = iv.select(s, strategy, 0, values.targets(test.concepts[:rows]), test.labels[:rows])
    np.testing.assert_array_equal(sel.scores, s)
    assert sel.errors is not None and sel.errors.shape == (1,)
    batch = iv.select_batch(s, strategy, 0, values.targets(test.concepts[:rows]))
    np.testing.assert_array_equal(batch.scores, s)
    result = edit_prediction(model, s, [], values)
    np.testing.assert_array_equal(result.proba_after, result.proba_before)


@SETTINGS
@given(
    ops=st.lists(
        st.tuples(st.integers(0, 19), st.sampled_from(OPERATIONS), st.floats(-3, 3)),
        max_size=8,
    ),
    strategy=st.sampled_from(STRATEGIES),
    budget=st.integers(0, 20),
)
def test_interventions_never_mutate_the_model_or_the_inputs(world, ops, strategy, budget):
    model, test, values, scores = world
    state = _model_state(model)
    s = scores[:40].copy()
    targets = values.targets(test.concepts[:40])
    t_copy = targets.copy()
    edits = [Edit(j, op, v if op in ("value", "scale") else None) for j, op, v in ops]
    edit_prediction(model, s, edits, values)
    for granularity in ("concept", "group"):
        iv = Intervener(model, values, granularity=granularity)
        iv.select(s, strategy, budget, targets, test.labels[:40])
        iv.select_batch(s, strategy, budget * 3, targets, rounds=2)
    for before, after in zip(state, _model_state(model), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(s, scores[:40])
    np.testing.assert_array_equal(targets, t_copy)
