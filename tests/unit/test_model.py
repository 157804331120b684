import json

import numpy as np
import pytest

from cbm.concepts import ConceptBank
from cbm.exceptions import ArtefactError, ValidationError
from cbm.heads import SparseLinearHead
from cbm.io import read_arrays, write_arrays
from cbm.model import ConceptBottleneckModel

BACKBONE = {"backbone_id": "test", "weights_id": "sha256:0", "embed_dim": 16}


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    C = rng.standard_normal((6, 16))
    X = rng.standard_normal((400, 16))
    cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (
        C / np.linalg.norm(C, axis=1, keepdims=True)
    ).T
    y = cos[:, :3].argmax(1)
    bank = ConceptBank("t", tuple("abcdef"), groups=("g1",) * 3 + ("g2",) * 3)
    model = ConceptBottleneckModel(
        bank, C, BACKBONE, ("x", "y", "z"), SparseLinearHead(target_nec=2)
    )
    return model.fit(X, y), X, y


def test_save_load_gives_identical_predictions(fitted, tmp_path):
    model, X, _ = fitted
    model.metrics = {"test_accuracy": 0.5}
    model.save(tmp_path / "m")
    back = ConceptBottleneckModel.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    assert back.bank == model.bank and back.metrics == model.metrics
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]


def test_contributions_add_up_to_the_logit(fitted):
    model, X, _ = fitted
    pred = model.predict(X)
    contrib = model.contributions(X)
    logits = model.logits_from_scores(model.concept_scores(X))
    np.testing.assert_allclose(
        contrib.sum(1) + model.bias[pred], logits[np.arange(len(X)), pred], atol=1e-8
    )


def test_model_is_accurate_and_sparse(fitted):
    model, X, y = fitted
    assert (model.predict(X) == y).mean() > 0.85
    assert model.nec <= 2
    explanation = model.explain(X[:1], top=2)[0]
    assert explanation.predicted in model.class_names
    assert 1 <= len(explanation.concepts) <= 2


def test_wrong_dimension_bank_is_explained():
    bank = ConceptBank("t", ("a", "b"))
    with pytest.raises(ValidationError, match="dimension 8, but the backbone 'test' produces 16"):
        ConceptBottleneckModel(bank, np.ones((2, 8)), BACKBONE, ("x", "y"))


def test_unknown_labels_are_refused(fitted):
    model, X, y = fitted
    with pytest.raises(ValidationError, match="class indices in 0..2"):
        model.fit(X, y + 5)


def test_tampered_artefacts_are_refused(fitted, tmp_path):
    model, _, _ = fitted
    d = model.save(tmp_path / "m")
    arrays = read_arrays(d / "model.safetensors")
    arrays["head_coef"] = arrays["head_coef"][:, :2]
    write_arrays(d / "model.safetensors", arrays)
    with pytest.raises(ArtefactError, match="does not match the sha256"):
        ConceptBottleneckModel.load(d)
    # without the recorded hash (a hand-made directory) the shape check still catches it
    config = json.loads((d / "config.json").read_text())
    del config["arrays_sha256"]
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtefactError, match="'head_coef' has shape"):
        ConceptBottleneckModel.load(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ArtefactError, match="not valid UTF-8 JSON"):
        ConceptBottleneckModel.load(d)
    future = {"kind": "concept_bottleneck_model", "schema_version": 99}
    (d / "config.json").write_text(json.dumps(future))
    with pytest.raises(ArtefactError, match="newer"):
        ConceptBottleneckModel.load(d)


def test_a_directory_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ArtefactError, match="does not exist"):
        ConceptBottleneckModel.load(tmp_path)
