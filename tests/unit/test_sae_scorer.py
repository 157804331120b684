import json

import numpy as np
import pytest

from cbm.concepts.naming import Vocabulary, name_by_text
from cbm.concepts.sae import SparseAutoencoder
from cbm.exceptions import ArtefactError
from cbm.heads.sparse import SparseLinearHead
from cbm.model import ConceptBottleneckModel
from cbm.scores.sae import SAEConceptScorer, sae_bottleneck

BACKBONE = {"backbone_id": "test", "weights_id": "sha256:0", "embed_dim": 16}


@pytest.fixture(scope="module")
def sae_and_data():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = (rng.random((800, 6)) < 0.3) * rng.uniform(1, 2, (800, 6))
    X = (Z @ D + 0.01 * rng.standard_normal((800, 16))).astype(np.float32)
    y = Z[:, :3].argmax(1)
    sae = SparseAutoencoder(
        n_latents=12, k=3, epochs=10, batch_size=100, device="cpu", n_threads=1
    ).fit(X)
    vocab = Vocabulary.from_words([f"word{i}" for i in range(6)], "toy")
    names = name_by_text(sae.decoder_directions_, D, vocab, min_score=-1.0)
    return sae, names, X, y


def test_scorer_standardises_chosen_latents(sae_and_data):
    sae, _, X, _ = sae_and_data
    scorer = SAEConceptScorer(sae, [3, 1], ["a", "b"]).fit(X)
    S = scorer.transform(X)
    assert S.shape == (800, 2)
    codes = sae.transform(X)[:, [3, 1]]
    np.testing.assert_allclose(S, (codes - codes.mean(0)) / codes.std(0), atol=1e-4)
    assert list(scorer.get_feature_names_out()) == ["a", "b"]


def test_cbm_on_sae_concepts_round_trips(sae_and_data, tmp_path):
    sae, names, X, y = sae_and_data
    model = sae_bottleneck(sae, names, BACKBONE, ("x", "y", "z"), SparseLinearHead(target_nec=2))
    model.fit(X, y)
    assert (model.predict(X) == y).mean() > 0.6
    assert model.bank.provenance["source"] == "sparse autoencoder latents"
    model.save(tmp_path / "m")
    back = ConceptBottleneckModel.load(tmp_path / "m")
    assert isinstance(back.scorer, SAEConceptScorer)
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(back.concept_scores(X), model.concept_scores(X))
    assert back.bank == model.bank


def test_unknown_scorer_type_is_refused(sae_and_data, tmp_path):
    sae, names, X, y = sae_and_data
    model = sae_bottleneck(sae, names, BACKBONE, ("x", "y", "z"), SparseLinearHead(target_nec=2))
    model.fit(X, y).save(tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["scorer"]["type"] = "PickledScorer"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="unknown concept scorer"):
        ConceptBottleneckModel.load(tmp_path / "m")
