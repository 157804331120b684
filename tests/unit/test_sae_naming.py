import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cbm.concepts.bank import ConceptBank
from cbm.concepts.naming import (
    SHIPPED_WORDS,
    Vocabulary,
    name_by_classifier,
    name_by_images,
    name_by_text,
    name_with_backbone,
)
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.sae_pipeline import key_words, latent_concept_auroc, name_matches


def vocab_space(seed=0):
    rng = np.random.default_rng(seed)
    words = ("red", "green", "circle", "square", "dog")
    common = 3 * rng.standard_normal(16)  # every text shares this (modality gap)
    T = rng.standard_normal((5, 16)) + common
    return Vocabulary.from_words(words, "toy"), T, common


def test_text_naming_finds_the_closest_word_despite_a_shared_text_direction():
    vocab, T, common = vocab_space()
    decoder = (T - T.mean(0))[[1, 3]] + 0.05  # directions of "green" and "square"
    names = name_by_text(decoder, T, vocab)
    assert names.best == ["green", "square"]
    assert len(names.names[0]) == 3 and names.scores.shape == (2, 3)
    assert (np.diff(names.scores, axis=1) <= 0).all()
    assert not names.weak.any()
    # a direction unrelated to every word is flagged as a weak match
    far = np.random.default_rng(9).standard_normal((1, 16))
    assert name_by_text(far, T, vocab, min_score=0.9).weak.all()


def test_names_become_a_bank_with_unique_names_and_provenance():
    vocab, T, _ = vocab_space()
    decoder = np.vstack([T[0] - T.mean(0), T[0] - T.mean(0) + 0.01, T[2] - T.mean(0)])
    bank = name_by_text(decoder, T, vocab).to_bank("toy-latents")
    assert bank.concepts == ("red", "red (latent 1)", "circle")
    assert bank.prompts == ("red", "red", "circle")
    prov = bank.provenance
    assert prov["latents"] == [0, 1, 2] and prov["vocabulary"] == "toy"
    assert len(prov["top_names"][0]) == 3 and "cosine" in prov["method"]
    assert ConceptBank.from_dict(bank.to_dict()) == bank


def test_vocabularies_shipped_bank_and_file(tmp_path):
    words = Vocabulary.shipped()
    assert len(words.entries) > 20_000 and {"red", "circle", "striped"} <= set(words.entries)
    assert SHIPPED_WORDS.stat().st_size < 300_000
    assert (SHIPPED_WORDS.parent / "LICENSE-SCOWL.txt").is_file()
    bank = Vocabulary.load("bank:shapes")
    assert "striped texture" in bank.entries and bank.prompts[0].startswith("a photo")
    f = tmp_path / "mine.txt"
    f.write_text("# my words\nzebra\n\nzebra\nyak\n")
    mine = Vocabulary.load(f, template="a photo of a {}")
    assert mine.entries == ("zebra", "yak") and mine.prompts[1] == "a photo of a yak"
    with pytest.raises(ConfigurationError, match="one entry per line"):
        Vocabulary.load(tmp_path / "missing.txt")


def test_text_naming_needs_a_text_tower_and_matching_sizes():
    vocab, T, _ = vocab_space()
    with pytest.raises(ConfigurationError, match="no text tower"):
        name_with_backbone(T[:2], object(), vocab)
    with pytest.raises(ValidationError, match="5 vocabulary entries"):
        name_by_text(T[:2], T[:4], vocab)


def test_classifier_naming_picks_the_most_excited_class():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((200, 16))
    names = name_by_classifier(W[[4, 7]] * 5, W, [f"class{i}" for i in range(200)])
    assert names.best == ["class4", "class7"]
    assert not names.weak.any()


def test_image_naming_by_majority_label_of_top_images():
    y = np.repeat([0, 1, 2], 50)
    codes = np.zeros((150, 3))
    codes[y == 2, 0] = np.linspace(1, 2, 50)  # latent 0 fires on class 2 only
    codes[:, 1] = np.where(y == 0, 1.0, 0.9)  # latent 1 prefers class 0
    names = name_by_images(codes, y, ["a", "b", "c"], n_top=20)
    assert names.names[0][0] == "c" and names.scores[0, 0] == 1.0
    assert names.names[1][0] == "a"
    assert names.names[2][0] == "(dead)" and names.weak[2]


def test_pairwise_auroc_matches_sklearn():
    rng = np.random.default_rng(2)
    truth = rng.random((200, 3)) < 0.3
    codes = np.maximum(rng.standard_normal((200, 4)) + truth[:, [0, 1, 2, 0]], 0)
    auc = latent_concept_auroc(truth, codes)
    for c in range(3):
        for j in range(4):
            assert auc[c, j] == pytest.approx(roc_auc_score(truth[:, c], codes[:, j]))
    truth[:, 1] = False
    assert np.isnan(latent_concept_auroc(truth, codes)[1]).all()


def test_name_match_rules():
    assert key_words("object at top left") == ("top", "left")
    assert name_matches("striped texture", ("striped", "dotted", "line"))
    assert not name_matches("striped texture", ("line", "striped", "dotted"))
    assert name_matches("object at top left", ("left", "top", "right"))
    assert not name_matches("object at top left", ("left", "bottom", "right"))
    assert name_matches("red", ("red", "x", "y"), bank_vocabulary=True)
    assert not name_matches("small object", ("small", "x"), bank_vocabulary=True)
