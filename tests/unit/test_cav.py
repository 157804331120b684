"""CAV concept banks: directions recover planted concepts, round-trip through cbm.io."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cbm.concepts.cav import CAVBank, fit_cavs, fit_cavs_from_examples
from cbm.exceptions import ArtefactError, ValidationError
from cbm.model import ConceptBottleneckModel


def _planted(n: int = 400, dim: int = 16, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = np.linalg.qr(rng.standard_normal((dim, k)))[0].T  # orthonormal concept axes
    labels = rng.random((n, k)) < 0.4
    X = rng.standard_normal((n, dim)) * 0.5 + 2.0 * labels @ truth
    return X.astype(np.float32), labels.astype(int), truth


@pytest.mark.parametrize("method", ["svm", "logistic"])
def test_cavs_recover_planted_directions(method: str) -> None:
    X, labels, truth = _planted()
    cav = fit_cavs(X, labels, ["stripes", "dots", "fur"], method=method, backbone={"embed_dim": 16})
    assert cav.vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(cav.vectors, axis=1), 1.0, rtol=1e-5)
    cosines = np.abs(cav.vectors @ truth.T)
    assert (np.diag(cosines) > 0.9).all()  # each CAV points along its own concept
    assert (cav.holdout_accuracy > 0.9).all()
    assert cav.bank.provenance["method"] == method


def test_save_load_and_use_in_a_model(tmp_path: Path) -> None:
    X, labels, _ = _planted()
    cav = fit_cavs(X, labels, ["a", "b", "c"], backbone={"backbone_id": "x", "embed_dim": 16})
    loaded = CAVBank.load(cav.save(tmp_path / "bank"))
    np.testing.assert_array_equal(loaded.vectors, cav.vectors)
    np.testing.assert_allclose(loaded.holdout_accuracy, cav.holdout_accuracy)
    assert loaded.bank == cav.bank and loaded.backbone["backbone_id"] == "x"
    y = labels[:, 0] + 2 * labels[:, 1]  # classes defined by concepts a and b
    model = ConceptBottleneckModel(loaded.bank, loaded.vectors, loaded.backbone, list("0123"))
    model.fit(X, y)
    assert (model.predict(X) == y).mean() > 0.9
    (tmp_path / "bank" / "vectors.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ArtefactError, match="never loads pickles"):
        CAVBank.load(tmp_path / "bank")


def test_examples_api_and_bad_input() -> None:
    X, labels, _ = _planted(seed=1)
    pos = {"a": X[labels[:, 0] == 1][:50], "b": X[labels[:, 1] == 1][:50]}
    neg = X[labels.sum(axis=1) == 0][:80]
    cav = fit_cavs_from_examples(pos, neg, method="logistic", holdout=0.0)
    assert cav.bank.concepts == ("a", "b") and np.isnan(cav.holdout_accuracy).all()
    with pytest.raises(ValidationError, match="with and without"):
        fit_cavs(X, np.ones((len(X), 1)), ["always"])
    with pytest.raises(ValidationError, match="concept_labels must be"):
        fit_cavs(X, labels[:, :2], ["a", "b", "c"])
