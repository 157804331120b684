"""Filter steps and submodular selection, on a deterministic bag-of-words embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from cbm.concepts import ConceptBank
from cbm.concepts.filters import (
    MaxLength,
    NearDuplicates,
    NotVisible,
    TooSimilarToClass,
    apply_filters,
    filter_bank,
)
from cbm.concepts.select import discriminability, greedy_submodular, select_bank
from cbm.exceptions import ValidationError


class WordEmbedder:
    """Unit bag-of-words vectors: cosine = shared-word overlap. Exact and fast."""

    embedder_id = "test:bag-of-words"

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        for t in texts:
            for w in t.lower().split():
                self.vocab.setdefault(w, len(self.vocab))
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, self.vocab[w] % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_each_step_reports_what_it_removed_and_why() -> None:
    emb = WordEmbedder()
    concepts = [
        "long white fuselage",
        "a cat",
        "jet engines",
        "jet engines wing",
        "Jet Engine",
        "an extremely long description of a tail",
    ]
    steps = [
        MaxLength(30),
        TooSimilarToClass(["cat", "airplane"], emb, threshold=0.85),
        NearDuplicates(emb, threshold=0.85),
    ]
    kept, report = apply_filters(concepts, steps)
    assert kept == ["long white fuselage", "jet engines", "jet engines wing"]
    why = {r.concept: (r.step, r.reason) for r in report.removed}
    assert why["an extremely long description of a tail"] == ("length<=30", "39 characters > 30")
    assert why["a cat"] == ("class-similarity<=0.85", "is the class name 'cat'")
    assert why["Jet Engine"][1] == "same as 'jet engines' (case, article or plural)"
    assert report.summary() == (
        "length<=30: 6 -> 5; class-similarity<=0.85: 5 -> 4; near-duplicates<=0.85: 4 -> 3"
    )


def test_near_duplicates_by_embedding_keep_the_first() -> None:
    kept, report = apply_filters(
        ["red wing", "wing red", "blue tail"], [NearDuplicates(WordEmbedder())]
    )
    assert kept == ["red wing", "blue tail"]
    assert report.removed[0].reason == "similarity 1.00 to 'red wing' > 0.9"


def test_not_visible_uses_top_k_image_similarity() -> None:
    rng = np.random.default_rng(0)
    directions = np.eye(4, dtype=np.float32)
    images = np.concatenate([directions[[0, 1]].repeat(10, 0), rng.normal(size=(5, 4)) * 0.01])
    texts = {"seen a": directions[0], "seen b": directions[1], "unseen": directions[3]}

    def encode(batch: Sequence[str]) -> np.ndarray:
        return np.stack([texts[t] for t in batch])

    step = NotVisible(images, encode, top_k=5, cutoff=0.5)
    kept, report = apply_filters(list(texts), [step])
    assert kept == ["seen a", "seen b"]
    assert "below the cut-off 0.5" in report.removed[0].reason
    kept, _ = apply_filters(list(texts), [NotVisible(images, encode, drop_fraction=0.34)])
    assert kept == ["seen a", "seen b"]
    with pytest.raises(ValidationError, match="n_images >= top_k"):
        NotVisible(images[:3], encode, top_k=5)


def test_filter_bank_keeps_prompts_groups_and_records_the_filters() -> None:
    bank = ConceptBank(
        "b",
        ("wings", "cat", "tail"),
        ("photo of wings", "photo of a cat", "photo of a tail"),
        ("part", "animal", "part"),
        provenance={"concept_classes": {"wings": ["bird"], "cat": ["cat"], "tail": ["cat"]}},
    )
    out, _ = filter_bank(bank, [TooSimilarToClass(["cat"], WordEmbedder())])
    assert out.concepts == ("wings", "tail") and out.prompts[1] == "photo of a tail"
    assert out.groups == ("part", "part")
    assert out.provenance["filters"][0]["out"] == 2
    assert "cat" not in out.provenance["concept_classes"]


def _objective(s: np.ndarray, u: np.ndarray, idx: Sequence[int]) -> float:
    return float(u[list(idx)].sum() + np.clip(s[:, list(idx)], 0, None).max(1).sum())


def test_greedy_matches_brute_force_on_small_problems() -> None:
    from itertools import combinations

    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.normal(size=(7, 3))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        s, u = x @ x.T, rng.random(7)

        chosen = greedy_submodular(s, u, 3)
        best = max(_objective(s, u, c) for c in combinations(range(7), 3))
        assert len(set(chosen)) == 3
        assert _objective(s, u, chosen) >= (1 - 1 / np.e) * best


def test_selection_prefers_diverse_and_discriminative_concepts() -> None:
    # three copies of one concept and two distinct ones: a budget of 3 takes one copy
    x = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    assert sorted(greedy_submodular(x @ x.T, np.zeros(5), 3)) in ([0, 3, 4], [1, 3, 4], [2, 3, 4])
    # with no diversity weight, the utility alone decides
    assert sorted(greedy_submodular(x @ x.T, np.array([3, 2, 1, 0, 0.5]), 2, 0.0)) == [0, 1]


def test_discriminability_finds_the_class_specific_concept() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 50)
    scores = rng.normal(size=(150, 3))
    scores[labels == 1, 2] += 3.0
    d = discriminability(scores, labels)
    assert d.argmax() == 2 and d[2] > 1.0 and (d >= 0).all()


def test_select_bank_records_the_selection() -> None:
    bank = ConceptBank(
        "b",
        ("red wing", "wing red", "blue tail", "green beak"),
        provenance={"concept_classes": {"red wing": ["a", "b"], "blue tail": ["a"]}},
    )
    out = select_bank(bank, WordEmbedder(), budget=3)
    assert len(out) == 3 and {"blue tail", "green beak"} <= set(out.concepts)
    assert out.provenance["selection"]["budget"] == 3
