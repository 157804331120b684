import numpy as np
import pytest

from cbm.concepts import ConceptBank
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.heads import SparseLinearHead
from cbm.heads.control import random_control
from cbm.heads.edits import edit_concepts
from cbm.heads.residual import HybridModel
from cbm.model import ConceptBottleneckModel

BACKBONE = {"backbone_id": "test", "weights_id": "sha256:0", "embed_dim": 16}


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    C = rng.standard_normal((6, 16))
    X = rng.standard_normal((400, 16))
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = unit @ (C / np.linalg.norm(C, axis=1, keepdims=True)).T
    # Class 2 also depends on a direction no concept covers: the residual's job.
    hidden = rng.standard_normal(16)
    logits = np.column_stack([cos[:, 0], cos[:, 1], cos[:, 2] + 0.8 * unit @ hidden])
    y = logits.argmax(1)
    bank = ConceptBank("t", tuple("abcdef"), groups=("g1",) * 3 + ("g2",) * 3)
    model = ConceptBottleneckModel(
        bank, C, BACKBONE, ("x", "y", "z"), SparseLinearHead(target_nec=2)
    )
    return model.fit(X, y), X, y


def test_edits_return_a_new_model_and_leave_the_original_alone(fitted):
    model, X, y = fitted
    before = model.head.coef_.copy()
    used = int(np.flatnonzero(np.abs(model.weights).sum(0))[0])
    name = model.bank.concepts[used]
    edited = edit_concepts(model, remove=[name], scale={"group:g2": 0.5})
    np.testing.assert_array_equal(model.head.coef_, before)
    assert (edited.weights[:, used] == 0).all()
    assert edited.training["edits"]["removed"] == [name]
    # The parent's path describes the parent, not the edit: it must not travel along.
    assert hasattr(model.head, "path_") and not hasattr(edited.head, "path_")
    g2 = [3, 4, 5]
    np.testing.assert_allclose(edited.head.coef_[:, g2], 0.5 * before[:, g2])
    refitted = edit_concepts(model, remove=[name], refit=(X, y))
    assert (refitted.weights[:, used] == 0).all()
    assert refitted.nec <= 2.0
    assert (
        refitted.head.score(model.concept_scores(X), y)
        >= edited.head.score(model.concept_scores(X), y) - 0.05
    )
    with pytest.raises(ValidationError, match="not in bank"):
        edit_concepts(model, remove=["no such concept"])


def test_random_control_is_nec_matched_and_reports_accuracy(fitted):
    model, X, y = fitted
    control = random_control(BACKBONE, 6, X, y, X, y, ("x", "y", "z"), 1.0, head=model.head)
    assert control.nec <= 1.0
    assert 0.0 <= control.metrics["test_accuracy"] <= 1.0
    assert control.bank.name == "random-directions"
    rng = np.random.default_rng(1)
    vocab = [f"word{i}" for i in range(50)]
    words = random_control(
        BACKBONE, 6, X, y, X, y, ("x", "y", "z"), 1.0,
        vocabulary=vocab, encode_texts=lambda texts: rng.standard_normal((len(texts), 16)),
    )  # fmt: skip
    assert words.bank.name == "random-words" and set(words.bank.concepts) <= set(vocab)
    with pytest.raises(ConfigurationError, match="both vocabulary and encode_texts"):
        random_control(BACKBONE, 6, X, y, X, y, ("x", "y", "z"), 1.0, vocabulary=vocab)


def test_hybrid_residual_improves_fit_reports_share_and_round_trips(fitted, tmp_path):
    model, X, y = fitted
    hybrid = HybridModel(model, l2=1e-3, max_iter=50).fit(X, y)
    base = (model.predict(X) == y).mean()
    assert (hybrid.predict(X) == y).mean() > base
    share = hybrid.residual_share(X)
    assert share.shape == (len(X),) and ((share >= 0) & (share <= 1)).all()
    assert share.mean() > 0.0
    hybrid.save(tmp_path / "h")
    back = HybridModel.load(tmp_path / "h")
    np.testing.assert_allclose(back.predict_proba(X), hybrid.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(back.residual_share(X), share, rtol=1e-6)
