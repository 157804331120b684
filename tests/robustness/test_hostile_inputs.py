"""Hostile and broken input to the foundation: each gets a specific error, nothing runs."""

import json
import os
import pickle

import numpy as np
import pytest

from cbm.concepts import ConceptBank
from cbm.exceptions import ArtefactError, CBMError, ValidationError
from cbm.heads import SparseLinearHead
from cbm.io import write_arrays
from cbm.model import ConceptBottleneckModel
from cbm.scores import CosineConceptScorer

BACKBONE = {"backbone_id": "t", "weights_id": "sha256:0", "embed_dim": 8}


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 8))
    bank = ConceptBank("b", tuple("abcd"))
    m = ConceptBottleneckModel(bank, rng.standard_normal((4, 8)), BACKBONE, ("x", "y", "z"))
    return m.fit(X, np.arange(120) % 3)


@pytest.mark.parametrize(
    ("emb", "message"),
    [
        (np.full((3, 8), np.nan), "NaN or infinite values in 3 row"),
        (np.array([[np.inf] + [0.0] * 7, [1.0] * 8]), r"NaN or infinite.*\[0\]"),
        (np.ones((3, 5)), "dimension 5, but this scorer was fitted on 8"),
        (np.zeros((2, 8)), "all-zero row"),
        (np.ones(8), "must be 2-D"),
        (np.empty((0, 8)), "empty"),
        (np.array([["a"] * 8]), "numeric"),
    ],
)
def test_bad_embeddings_get_specific_errors(model, emb, message):
    with pytest.raises(ValidationError, match=message):
        model.predict(emb)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ((), "empty"),
        (("dup", "DUP", " dup "), "duplicates"),
        (("ok", ""), "blank"),
        (("ok", "x" * 10_000), "10000 characters long"),
        (("ok", None), "blank or not a string"),
    ],
)
def test_bad_banks_get_specific_errors(names, message):
    with pytest.raises(ValidationError, match=message):
        ConceptBank("bad", names)


def test_non_utf8_bank_file(tmp_path):
    path = tmp_path / "bank.json"
    path.write_bytes('{"kind": "concept_bank", "name": "ü"}'.encode("latin-1"))
    with pytest.raises(ArtefactError, match="not valid UTF-8 JSON"):
        ConceptBank.load(path)


def test_labels_unseen_in_training_are_never_predicted(model):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 8))
    bank = ConceptBank("b", tuple("abcd"))
    m = ConceptBottleneckModel(bank, rng.standard_normal((4, 8)), BACKBONE, ("x", "y", "z"))
    m.fit(X, np.arange(90) % 2)  # class "z" never seen
    proba = m.predict_proba(rng.standard_normal((50, 8)))
    assert proba.shape == (50, 3)
    np.testing.assert_array_equal(proba[:, 2], 0)


def test_single_class_training_set_is_explained():
    rng = np.random.default_rng(1)
    bank = ConceptBank("b", tuple("abcd"))
    m = ConceptBottleneckModel(bank, rng.standard_normal((4, 8)), BACKBONE, ("x", "y"))
    with pytest.raises(ValidationError, match="only 1 class"):
        m.fit(rng.standard_normal((30, 8)), np.zeros(30, int))


def test_scorer_refuses_nan_concept_embeddings():
    with pytest.raises(ValidationError, match="concept embeddings contain NaN"):
        CosineConceptScorer(np.full((2, 8), np.nan)).fit(np.ones((3, 8)))


def test_bad_head_settings_are_explained():
    X = np.random.default_rng(0).standard_normal((40, 4))
    with pytest.raises(CBMError, match="l1_ratio"):
        SparseLinearHead(l1_ratio=2.0).fit(X, np.arange(40) % 2)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PLANTED_PICKLE_RAN",))


def test_pickle_planted_in_a_model_directory_is_never_executed(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = model.save(tmp_path / "m")
    (d / "model.safetensors").write_bytes(pickle.dumps(_Payload()))
    config = json.loads((d / "config.json").read_text())
    config.pop("arrays_sha256")
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtefactError, match="never loads pickles"):
        ConceptBottleneckModel.load(d)
    assert not (tmp_path / "PLANTED_PICKLE_RAN").exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("concept_bank"), "missing or malformed field"),
        (lambda c: c.update(kind="concept_bank"), "expected an artefact of kind"),
        (lambda c: c.update(schema_version="1"), "schema_version"),
        (lambda c: c.update(schema_version=2**31), "newer than this cbm"),
        (lambda c: c["concept_bank"].update(concepts="abc"), "'concepts' must be a list"),
    ],
)
def test_malformed_config_is_explained(model, tmp_path, mutate, message):
    d = model.save(tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    mutate(config)
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtefactError, match=message):
        ConceptBottleneckModel.load(d)


def test_config_that_is_not_an_object(model, tmp_path):
    d = model.save(tmp_path / "m")
    (d / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ArtefactError, match="expected a JSON object"):
        ConceptBottleneckModel.load(d)


def test_missing_tensor_is_named(model, tmp_path):
    d = model.save(tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    config.pop("arrays_sha256")
    (d / "config.json").write_text(json.dumps(config))
    write_arrays(d / "model.safetensors", {"concept_embeddings": np.ones((4, 8), np.float32)})
    with pytest.raises(ArtefactError, match="missing tensor 'scorer_mean'"):
        ConceptBottleneckModel.load(d)


def test_non_finite_parameters_are_refused(model, tmp_path):
    d = model.save(tmp_path / "m")
    config = json.loads((d / "config.json").read_text())
    config.pop("arrays_sha256")  # without the hash, the loader must still catch damage
    (d / "config.json").write_text(json.dumps(config))
    arrays = {
        "concept_embeddings": model.concept_embeddings,
        "scorer_mean": model.scorer.mean_,
        "scorer_scale": model.scorer.scale_,
        "head_coef": np.where(model.head.coef_ != 0, np.nan, 0.0),
        "head_intercept": model.head.intercept_,
    }
    write_arrays(d / "model.safetensors", arrays)
    with pytest.raises(ArtefactError, match="'head_coef' holds NaN, infinite"):
        ConceptBottleneckModel.load(d)
