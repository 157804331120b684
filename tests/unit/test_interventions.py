import numpy as np
import pytest
from intervention_world import make_world

from cbm.exceptions import ConfigurationError, ValidationError
from cbm.interventions import (
    STRATEGIES,
    ConceptCalibration,
    Edit,
    Intervener,
    InterventionValues,
    apply_edits,
    curve_auc,
    edit_prediction,
    intervene,
    intervention_curves,
    steps_to_error,
)
from cbm.interventions.strategies import concept_criteria


@pytest.fixture(scope="module")
def world():
    model, train, test = make_world()
    train_scores = model.concept_scores(train.embeddings)
    values = InterventionValues.from_ground_truth(train_scores, train.concepts)
    return model, train, test, train_scores, values


# -- values and calibration -----------------------------------------------------------
def test_percentile_values_bracket_the_training_scores(world):
    _, _, _, s, _ = world
    v = InterventionValues.from_percentiles(s, present=90, absent=10)
    np.testing.assert_allclose(v.present, np.percentile(s, 90, axis=0))
    np.testing.assert_allclose(v.absent, np.percentile(s, 10, axis=0))
    np.testing.assert_allclose(v.neutral, 0.0, atol=1e-6)  # standardised scores
    with pytest.raises(ConfigurationError, match="absent < present"):
        InterventionValues.from_percentiles(s, present=10, absent=90)


def test_ground_truth_values_are_medians_and_targets_follow_truth(world):
    _, train, _, s, v = world
    j = 3
    assert v.present[j] == pytest.approx(np.median(s[train.concepts[:, j] == 1, j]))
    assert (v.present > v.absent).all()
    t = v.targets(train.concepts[:5])
    np.testing.assert_array_equal(t, np.where(train.concepts[:5] == 1, v.present, v.absent))
    with pytest.raises(ValidationError, match="binary"):
        v.targets(np.full((2, 20), 2))


def test_calibrations_give_probabilities_that_rise_with_the_score(world):
    _, train, _, s, v = world
    by_values = ConceptCalibration.from_values(v, confidence=0.9)
    p = by_values.proba(np.vstack([v.present, v.absent]))
    np.testing.assert_allclose(p[0], 0.9)
    np.testing.assert_allclose(p[1], 0.1)
    fitted = ConceptCalibration.from_ground_truth(s, train.concepts)
    assert (fitted.slope > 0).all()
    p = fitted.proba(s)
    # a calibrated probability is right more often than not on its own training data
    assert ((p > 0.5) == train.concepts.astype(bool)).mean() > 0.8
    with pytest.raises(ValidationError, match="concepts"):
        fitted.proba(s[:, :5])


# -- edits ----------------------------------------------------------------------------
def test_each_edit_operation_on_a_copy(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:3])
    original = s.copy()
    edits = [
        Edit("red", "present"),
        Edit("circle", "absent"),
        Edit(5, "value", 1.5),
        Edit("small object", "scale", 2.0),
        Edit("dark background", "remove"),
    ]
    out = apply_edits(s, edits, v, model.bank.concepts)
    np.testing.assert_array_equal(s, original)
    names = list(model.bank.concepts)
    assert (out[:, names.index("red")] == v.present[names.index("red")]).all()
    assert (out[:, names.index("circle")] == v.absent[names.index("circle")]).all()
    assert (out[:, 5] == 1.5).all()
    j = names.index("small object")
    np.testing.assert_allclose(out[:, j], 2 * s[:, j])
    assert (out[:, names.index("dark background")] == v.neutral[-3]).all()
    untouched = [
        i
        for i in range(20)
        if i
        not in {names.index(e.concept) if isinstance(e.concept, str) else e.concept for e in edits}
    ]
    np.testing.assert_array_equal(out[:, untouched], s[:, untouched])


def test_edit_errors_name_the_problem(world):
    model, _, _, s, v = world
    with pytest.raises(ValidationError, match="did you mean"):
        apply_edits(s[:1], [Edit("rde")], v, model.bank.concepts)
    with pytest.raises(ValidationError, match="unknown concept"):
        apply_edits(s[:1], [Edit("purple")], v, model.bank.concepts)
    with pytest.raises(ValidationError, match="finite value"):
        Edit("red", "scale")
    with pytest.raises(ValidationError, match="unknown edit"):
        Edit("red", "flip")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="out of range"):
        apply_edits(s[:1], [Edit(20, "present")], v)


def test_edit_prediction_moves_the_prediction(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings)
    i = int(np.flatnonzero(model.proba_from_scores(s).argmax(1) != test.labels)[0])
    truth = test.concepts[i]
    edits = [Edit(j, "present" if truth[j] else "absent") for j in range(20)]
    result = edit_prediction(model, s[i], edits, v)
    assert result.predicted_before[0] != test.labels[i]
    assert result.predicted_after[0] == test.labels[i]
    assert "->" in result.summary()
    np.testing.assert_array_equal(result.scores_before[0], s[i])


def test_intervene_replaces_exactly_the_masked_entries():
    s = np.arange(6.0).reshape(2, 3)
    mask = np.array([[True, False, False], [False, False, True]])
    out = intervene(s, mask, np.full(3, -1.0))
    np.testing.assert_array_equal(out, [[-1, 1, 2], [3, 4, -1]])
    with pytest.raises(ValidationError, match="mask shape"):
        intervene(s, mask[:, :2], 0.0)


# -- strategies -------------------------------------------------------------------------
def _brute_force(model, scores, proba, values):
    """ECTP and EUDTP one image and one concept at a time, through the model's API."""
    n, k = scores.shape
    ectp, eudtp = np.zeros((n, k)), np.zeros((n, k))
    for i in range(n):
        q = model.proba_from_scores(scores[i : i + 1])[0]
        h = -(q * np.log(q)).sum()
        for j in range(k):
            kl, ent = [], []
            for target in (values.present[j], values.absent[j]):
                s2 = scores[i : i + 1].copy()
                s2[0, j] = target
                p = model.proba_from_scores(s2)[0]
                kl.append((p * np.log(p / q)).sum())
                ent.append(-(p * np.log(p)).sum())
            ectp[i, j] = proba[i, j] * kl[0] + (1 - proba[i, j]) * kl[1]
            eudtp[i, j] = h - (proba[i, j] * ent[0] + (1 - proba[i, j]) * ent[1])
    return ectp, eudtp


def test_batched_ectp_and_eudtp_match_a_one_at_a_time_computation(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:7])
    proba = ConceptCalibration.from_values(v).proba(s)
    args = (s, model.logits_from_scores(s), proba, model.weights, v.present, v.absent, v.neutral)
    ectp, eudtp = _brute_force(model, s, proba, v)
    np.testing.assert_allclose(concept_criteria("ectp", *args), ectp, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(concept_criteria("eudtp", *args), eudtp, rtol=1e-6, atol=1e-9)


def test_cctp_is_the_total_absolute_contribution(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:4])
    args = (s, model.logits_from_scores(s), s, model.weights, v.present, v.absent, v.neutral)
    expected = np.abs(s[:, None, :] * model.weights[None]).sum(1)
    np.testing.assert_allclose(concept_criteria("cctp", *args), expected)


def test_ucp_and_lcp_rank_concepts_alike_but_not_groups(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:50])
    ucp = Intervener(model, v).select(s, "ucp", 20).order
    lcp = Intervener(model, v).select(s, "lcp", 20).order
    np.testing.assert_array_equal(ucp, lcp)
    g_ucp = Intervener(model, v, granularity="group").select(s, "ucp", 6).order
    g_lcp = Intervener(model, v, granularity="group").select(s, "lcp", 6).order
    assert (g_ucp != g_lcp).any()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_select_picks_distinct_units_within_budget(world, strategy):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:30])
    sel = Intervener(model, v).select(s, strategy, 4)
    assert sel.order.shape == (30, 4)
    assert all(len(set(row)) == 4 for row in sel.order.tolist())
    assert (sel.chosen.sum(1) == 4).all()
    assert sel.scores is None and len(sel.names(0)) == 4


def test_group_intervention_sets_every_member(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings[:20])
    targets = v.targets(test.concepts[:20])
    sel = Intervener(model, v, granularity="group").select(s, "ectp", 1, targets)
    assert sel.units.names == ("shape", "colour", "size", "position", "texture", "background")
    groups = np.asarray(model.bank.groups)
    for i in range(20):
        members = groups == sel.units.names[sel.order[i, 0]]
        np.testing.assert_array_equal(sel.scores[i, members], targets[i, members])
        np.testing.assert_array_equal(sel.scores[i, ~members], s[i, ~members])


def test_batch_budget_is_spent_exactly_and_on_the_uncertain_images(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings)
    iv = Intervener(model, v)
    sel = iv.select_batch(s, "eudtp", 150, v.targets(test.concepts), rounds=3)
    assert sel.chosen.sum() == 150
    proba = model.proba_from_scores(s)
    entropy = -(proba * np.log(np.clip(proba, 1e-300, 1))).sum(1)
    helped = sel.chosen.any(1)
    assert entropy[helped].mean() > entropy[~helped].mean()
    before = (proba.argmax(1) != test.labels).mean()
    after = (model.proba_from_scores(sel.scores).argmax(1) != test.labels).mean()
    assert after < before
    with pytest.raises(ValidationError, match="unknown strategy"):
        iv.select_batch(s, "oracle", 3)


# -- curves -----------------------------------------------------------------------------
@pytest.mark.parametrize("budget", ["image", "batch"])
def test_curves_start_at_the_model_error_and_end_at_the_all_true_error(world, budget):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings)
    targets = v.targets(test.concepts)
    curves = intervention_curves(Intervener(model, v), s, test.labels, targets, budget=budget)
    start = (model.proba_from_scores(s).argmax(1) != test.labels).mean()
    end = (model.proba_from_scores(targets).argmax(1) != test.labels).mean()
    for c in curves.values():
        assert c.errors.shape == (21,)
        assert c.errors[0] == pytest.approx(start) and c.errors[-1] == pytest.approx(end)


@pytest.mark.parametrize("budget", ["image", "batch"])
@pytest.mark.parametrize("granularity", ["concept", "group"])
def test_informed_strategies_beat_random_on_the_shapes_world(world, granularity, budget):
    model, _, test, s_train, v = world
    s = model.concept_scores(test.embeddings)
    iv = Intervener(model, v, granularity=granularity)
    curves = intervention_curves(iv, s, test.labels, v.targets(test.concepts), budget=budget)
    rand = curves.pop("rand")
    for name, c in curves.items():
        assert c.auc < rand.auc, name
    best = min(c.steps_to_reduce(0.5) for c in curves.values())
    assert best <= rand.steps_to_reduce(0.5) / 2


def test_a_batch_budget_goes_where_the_criterion_is_highest(world):
    model, _, test, _, v = world
    s = model.concept_scores(test.embeddings)
    iv = Intervener(model, v)
    with pytest.raises(ValidationError, match="'image' or 'batch'"):
        intervention_curves(iv, s, test.labels, v.targets(test.concepts), budget="all")
    sel = iv.select_batch(s, "ectp", 40, v.targets(test.concepts), labels=test.labels)
    assert sel.errors is not None and sel.errors.shape == (2,)
    proba = iv._calibration().proba(s)
    crit = iv.criteria("ectp", s, model.logits_from_scores(s), proba, np.random.default_rng(0))
    assert crit[sel.chosen].min() >= crit[~sel.chosen].max()


def test_auc_and_steps_helpers():
    assert curve_auc(np.array([0.2, 0.2, 0.2])) == pytest.approx(0.2)
    assert curve_auc(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert steps_to_error(np.array([0.4, 0.3, 0.2, 0.1]), 0.2) == 2
    assert steps_to_error(np.array([0.4, 0.3]), 0.1) is None
