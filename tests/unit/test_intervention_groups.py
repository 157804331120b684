"""Group interventions: criteria over a group's possible answers, and curves below random."""

import itertools

import numpy as np
import pytest
from intervention_world import make_world

from cbm.exceptions import ValidationError
from cbm.interventions import (
    ConceptCalibration,
    Intervener,
    InterventionValues,
    intervention_curves,
)
from cbm.interventions.groups import group_criteria, outcome_proba, outcome_table
from cbm.interventions.strategies import Units, concept_criteria


@pytest.fixture(scope="module")
def shifted():
    """Test embeddings much noisier than training: concept predictions go wrong often."""
    model, train, test = make_world(noise=2.0, seed=0)
    train_scores = model.concept_scores(train.embeddings)
    values = InterventionValues.from_ground_truth(train_scores, train.concepts)
    calibration = ConceptCalibration.from_ground_truth(train_scores, train.concepts)
    return model, test, values, calibration


def _brute_force(model, scores, proba, values, members, exclusive):
    """ECTP and EUDTP of one group, one image and one possible answer at a time."""
    idx = np.flatnonzero(members)
    answers = (
        [tuple(j == o for j in range(idx.size)) for o in range(idx.size)]
        if exclusive
        else list(itertools.product((False, True), repeat=idx.size))
    )
    ectp, eudtp = np.zeros(len(scores)), np.zeros(len(scores))
    for i in range(len(scores)):
        q = model.proba_from_scores(scores[i : i + 1])[0]
        p_i = proba[i, idx]
        weights = [
            p_i[list(a)].sum() / p_i.sum() if exclusive else np.prod(np.where(a, p_i, 1 - p_i))
            for a in answers
        ]
        for a, w in zip(answers, weights, strict=True):
            s2 = scores[i : i + 1].copy()
            s2[0, idx] = np.where(a, values.present[idx], values.absent[idx])
            p = model.proba_from_scores(s2)[0]
            ectp[i] += w * (p * np.log(p / q)).sum()
            eudtp[i] += w * (p * np.log(p)).sum()
        eudtp[i] += -(q * np.log(q)).sum()
    return ectp, eudtp


@pytest.mark.parametrize("mode", ["exclusive", "independent"])
def test_group_ectp_and_eudtp_are_expectations_over_the_groups_answers(shifted, mode):
    model, test, v, cal = shifted
    s = model.concept_scores(test.embeddings[:6])
    proba = cal.proba(s)
    units = Units.groups(model.bank.groups)
    args = (s, model.logits_from_scores(s), proba, model.weights, v.present, v.absent, units)
    ectp = group_criteria("ectp", *args, mode=mode)
    eudtp = group_criteria("eudtp", *args, mode=mode)
    for u, members in enumerate(units.membership):
        want_ectp, want_eudtp = _brute_force(model, s, proba, v, members, mode == "exclusive")
        # Criteria are O(1); the model's float32 logits leave ~1e-9 of rounding between the
        # batched formula and the one-answer-at-a-time computation.
        np.testing.assert_allclose(ectp[:, u], want_ectp, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(eudtp[:, u], want_eudtp, rtol=1e-6, atol=1e-7)


def test_outcome_probabilities_and_tables():
    p = np.array([[0.9, 0.3, 0.1], [0.2, 0.2, 0.2]])
    excl = outcome_proba(p, outcome_table(3, "exclusive"), "exclusive")
    np.testing.assert_allclose(excl, [[0.9 / 1.3, 0.3 / 1.3, 0.1 / 1.3], [1 / 3] * 3])
    table = outcome_table(3, "independent")
    assert table.shape == (8, 3) and len({tuple(r) for r in table.tolist()}) == 8
    indep = outcome_proba(p, table, "independent")
    np.testing.assert_allclose(indep.sum(1), 1.0)
    np.testing.assert_allclose(indep[:, 0], np.prod(1 - p, axis=1))  # nothing present
    # a one-member group is a yes/no question in either mode
    np.testing.assert_array_equal(outcome_table(1, "exclusive"), [[False], [True]])
    with pytest.raises(ValidationError, match="joint outcomes"):
        outcome_table(13, "independent")


def test_one_member_groups_reduce_to_the_concept_criteria(shifted):
    model, test, v, cal = shifted
    s = model.concept_scores(test.embeddings[:20])
    proba = cal.proba(s)
    logits = model.logits_from_scores(s)
    reverse = np.eye(20, dtype=bool)[::-1]  # unit u is concept 19 - u: one member each
    units = Units(reverse, tuple(model.bank.concepts[::-1]))
    assert not units.is_identity
    for strategy in ("ucp", "lcp", "ectp", "eudtp"):
        per_concept = concept_criteria(
            strategy, s, logits, proba, model.weights, v.present, v.absent, v.neutral
        )
        for mode in ("exclusive", "independent"):
            singles = group_criteria(
                strategy, s, logits, proba, model.weights, v.present, v.absent, units, mode
            )
            np.testing.assert_allclose(singles, per_concept[:, ::-1], rtol=1e-6, atol=1e-9)


def test_unknown_group_outcome_mode_is_refused(shifted):
    model, _, v, cal = shifted
    with pytest.raises(ValidationError, match="group_outcomes"):
        Intervener(model, v, cal, granularity="group", group_outcomes="one-hot")


@pytest.mark.parametrize("budget", ["image", "batch"])
def test_every_informed_strategy_beats_random_on_groups_under_deployment_noise(shifted, budget):
    """Failed before group criteria enumerated answers: UCP, LCP, EUDTP were above RAND."""
    model, test, v, cal = shifted
    s = model.concept_scores(test.embeddings)
    iv = Intervener(model, v, cal, granularity="group")
    curves = intervention_curves(iv, s, test.labels, v.targets(test.concepts), budget=budget)
    rand = curves.pop("rand")
    assert rand.errors[0] > 0.5, "the shifted test split should leave much error to fix"
    worse = {k: round(c.auc, 3) for k, c in curves.items() if c.auc >= rand.auc}
    assert not worse, f"above RAND ({rand.auc:.3f}): {worse}"
    for c in curves.values():
        assert c.errors[-1] == pytest.approx(rand.errors[-1])  # every group set: same end
