"""Names for sparse-autoencoder latents, and how each name was obtained.

* :func:`name_by_text`: the vocabulary entries whose text embeddings are closest
  (cosine) to a latent's decoder direction (Discover-then-Name). Text embeddings are
  centred on the vocabulary mean first, which removes the direction every text shares
  (CLIP's "modality gap") so that cosines compare meanings, not modalities.
* :func:`name_by_classifier`: for image-only backbones with a classifier head, the
  classes whose logits the decoder direction raises most.
* :func:`name_by_images`: the majority label among a latent's top-activating images.

Each returns :class:`LatentNames` (top-3 names and scores, a weak-match flag), which
:meth:`LatentNames.to_bank` turns into a :class:`ConceptBank` whose provenance
records the method, the vocabulary and every latent's alternatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cbm.concepts.bank import ConceptBank
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.validation import check_embeddings

VOCAB_DIR = Path(__file__).parent / "vocabularies"
SHIPPED_WORDS = VOCAB_DIR / "english_words.txt"


@dataclass(frozen=True)
class Vocabulary:
    """Candidate names and the texts to embed for them."""

    name: str
    entries: tuple[str, ...]
    prompts: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValidationError(f"vocabulary {self.name!r} is empty")
        if len(self.prompts) != len(self.entries):
            raise ValidationError(
                f"vocabulary {self.name!r}: {len(self.entries)} entries but "
                f"{len(self.prompts)} prompts"
            )

    @classmethod
    def from_words(
        cls, words: Sequence[str], name: str, template: str = "{}", **source: Any
    ) -> Vocabulary:
        """Unique non-blank words, each embedded as ``template.format(word)``."""
        if "{}" not in template:
            raise ConfigurationError(f"template must contain '{{}}', got {template!r}")
        seen: dict[str, None] = {}
        for w in words:
            w = w.strip()
            if w and not w.startswith("#"):
                seen.setdefault(w, None)
        entries = tuple(seen)
        return cls(name, entries, tuple(template.format(w) for w in entries), dict(source))

    @classmethod
    def shipped(cls, template: str = "{}") -> Vocabulary:
        """The shipped English word list (SCOWL size 35 via Debian wamerican-small)."""
        words = SHIPPED_WORDS.read_text(encoding="utf-8").split()
        return cls.from_words(
            words,
            "english-words",
            template,
            file="cbm/concepts/vocabularies/english_words.txt",
            licence="SCOWL (permissive, see LICENSE-SCOWL.txt)",
        )

    @classmethod
    def from_bank(cls, bank: ConceptBank) -> Vocabulary:
        """A concept bank: its names, embedded through its prompts."""
        return cls(bank.name, bank.concepts, bank.prompts, {"concept_bank": bank.name})

    @classmethod
    def load(cls, spec: str | Path, template: str = "{}") -> Vocabulary:
        """``"words"`` (shipped list), ``"bank:NAME_OR_JSON"``, or a text file, one per line."""
        text = str(spec)
        if text == "words":
            return cls.shipped(template)
        if text.startswith("bank:"):
            return cls.from_bank(ConceptBank.load(text[5:]))
        path = Path(text)
        if path.suffix == ".json":
            return cls.from_bank(ConceptBank.load(path))
        if not path.is_file():
            raise ConfigurationError(
                f"vocabulary {text!r} is neither 'words', 'bank:NAME', a bank .json nor a "
                "text file with one entry per line"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls.from_words(lines, path.stem, template, file=str(path))


@dataclass
class LatentNames:
    """Top names per latent. ``scores[i, r]`` belongs to ``names[i][r]``."""

    latents: np.ndarray
    names: list[tuple[str, ...]]
    scores: np.ndarray
    weak: np.ndarray
    method: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> list[str]:
        return [n[0] for n in self.names]

    def to_bank(
        self, name: str = "sae-latents", latents: Sequence[int] | None = None
    ) -> ConceptBank:
        """A bank with one concept per latent (``latents``: a subset, default all).

        Concept names are the best name, made unique with the latent index where two
        latents share it (``"red"``, ``"red (latent 17)"``); prompts are the best names.
        """
        pos = {int(j): i for i, j in enumerate(self.latents)}
        chosen = [int(j) for j in (self.latents if latents is None else latents)]
        missing = [j for j in chosen if j not in pos]
        if missing:
            raise ValidationError(f"latents {missing[:5]} were not named")
        used: set[str] = set()
        concepts, prompts = [], []
        for j in chosen:
            best = self.names[pos[j]][0]
            label = best if best.casefold() not in used else f"{best} (latent {j})"
            used.add(label.casefold())
            concepts.append(label)
            prompts.append(best)
        return ConceptBank(
            name=name,
            concepts=tuple(concepts),
            prompts=tuple(prompts),
            provenance={
                "source": "sparse autoencoder latents",
                "method": self.method,
                **self.details,
                "latents": chosen,
                "top_names": [list(self.names[pos[j]]) for j in chosen],
                "top_scores": [[round(float(s), 4) for s in self.scores[pos[j]]] for j in chosen],
                "weak": [bool(self.weak[pos[j]]) for j in chosen],
            },
        )


def _top(
    scores: np.ndarray, labels: Sequence[str], top: int
) -> tuple[list[tuple[str, ...]], np.ndarray]:
    top = min(top, scores.shape[1])
    idx = np.argsort(-scores, axis=1)[:, :top]
    names = [tuple(labels[j] for j in row) for row in idx]
    return names, np.take_along_axis(scores, idx, axis=1)


def name_by_text(
    decoder: np.ndarray,
    text_embeddings: np.ndarray,
    vocabulary: Vocabulary,
    top: int = 3,
    min_score: float = 0.3,
    center_texts: bool = True,
) -> LatentNames:
    """Name each decoder direction by its closest vocabulary texts (cosine).

    Parameters
    ----------
    decoder
        ``(n_latents, dim)`` decoder directions in the backbone's embedding space.
    text_embeddings
        ``(len(vocabulary), dim)`` embeddings of ``vocabulary.prompts``.
    min_score
        A best cosine below this flags the name as weak.
    center_texts
        Subtract the vocabulary's mean text embedding before the cosine.
    """
    D = check_embeddings(decoder, "decoder directions").astype(np.float64)
    T = check_embeddings(text_embeddings, "text embeddings", dim=D.shape[1]).astype(np.float64)
    if T.shape[0] != len(vocabulary.entries):
        raise ValidationError(
            f"{T.shape[0]} text embeddings for {len(vocabulary.entries)} vocabulary entries"
        )
    if center_texts and T.shape[0] > 1:
        T = T - T.mean(0)
    D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    T = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    names, scores = _top(D @ T.T, vocabulary.entries, top)
    return LatentNames(
        latents=np.arange(D.shape[0]),
        names=names,
        scores=scores,
        weak=scores[:, 0] < min_score,
        method="cosine of decoder direction with vocabulary text embeddings"
        + (" (vocabulary-centred)" if center_texts else ""),
        details={
            "vocabulary": vocabulary.name,
            "vocabulary_source": vocabulary.source,
            "min_score": min_score,
        },
    )


def name_with_backbone(
    decoder: np.ndarray, backbone: Any, vocabulary: Vocabulary, **kwargs: Any
) -> LatentNames:
    """:func:`name_by_text` with texts embedded by ``backbone.encode_texts``."""
    if not hasattr(backbone, "encode_texts"):
        raise ConfigurationError(
            "this backbone has no text tower; name latents with name_by_images or "
            "name_by_classifier instead"
        )
    names = name_by_text(
        decoder, backbone.encode_texts(list(vocabulary.prompts)), vocabulary, **kwargs
    )
    names.details["backbone"] = getattr(backbone, "backbone_id", type(backbone).__name__)
    return names


def name_by_classifier(
    decoder: np.ndarray,
    class_weights: np.ndarray,
    class_names: Sequence[str],
    top: int = 3,
    min_z: float = 3.0,
) -> LatentNames:
    """Name each latent by the classes whose logits its decoder direction raises most.

    ``class_weights`` is the ``(n_classes, dim)`` weight of a linear classifier on the
    same embeddings (e.g. an ImageNet head). Scores are logit increments per unit step
    along the direction; a best score less than ``min_z`` standard deviations above
    the mean over classes is weak.
    """
    D = check_embeddings(decoder, "decoder directions").astype(np.float64)
    W = check_embeddings(class_weights, "class weights", dim=D.shape[1]).astype(np.float64)
    if W.shape[0] != len(class_names):
        raise ValidationError(f"{W.shape[0]} classifier rows but {len(class_names)} class names")
    D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    S = D @ W.T
    names, scores = _top(S, list(class_names), top)
    z = (scores[:, 0] - S.mean(1)) / np.maximum(S.std(1), 1e-12)
    return LatentNames(
        latents=np.arange(D.shape[0]),
        names=names,
        scores=scores,
        weak=z < min_z,
        method="classes whose logits the decoder direction raises most",
        details={"min_z": min_z, "n_classes": len(class_names)},
    )


def top_activating(codes: np.ndarray, n_top: int = 16) -> np.ndarray:
    """``(n_latents, n_top)`` indices of each latent's most activating samples."""
    Z = check_embeddings(codes, "codes")
    n_top = min(n_top, Z.shape[0])
    idx = np.argpartition(-Z, n_top - 1, axis=0)[:n_top].T
    order = np.argsort(-np.take_along_axis(Z.T, idx, axis=1), axis=1)
    return np.take_along_axis(idx, order, axis=1)


def name_by_images(
    codes: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    n_top: int = 16,
    top: int = 3,
    min_purity: float = 0.5,
) -> LatentNames:
    """Name each latent by the most common labels among its top-activating images.

    Scores are label fractions among the ``n_top`` images (only those where the
    latent fires); a best fraction under ``min_purity`` is weak, as is a latent that
    never fires (name ``"(dead)"``).
    """
    Z = check_embeddings(codes, "codes")
    y = np.asarray(labels, dtype=int)
    if y.shape != (Z.shape[0],):
        raise ValidationError(f"labels must have shape ({Z.shape[0]},), got {y.shape}")
    idx = top_activating(Z, n_top)
    active = np.take_along_axis(Z.T, idx, axis=1) > 0
    counts = np.zeros((Z.shape[1], len(label_names)))
    rows = np.repeat(np.arange(Z.shape[1]), idx.shape[1])
    np.add.at(counts, (rows, y[idx].ravel()), active.ravel())
    frac = counts / np.maximum(active.sum(1, keepdims=True), 1)
    names, scores = _top(frac, list(label_names), top)
    dead = active.sum(axis=1) == 0
    names = [("(dead)",) * len(n) if dead[i] else n for i, n in enumerate(names)]
    return LatentNames(
        latents=np.arange(Z.shape[1]),
        names=names,
        scores=scores,
        weak=(scores[:, 0] < min_purity) | dead,
        method=f"majority label among the top {n_top} activating images",
        details={"min_purity": min_purity, "top_images": idx.tolist()},
    )
