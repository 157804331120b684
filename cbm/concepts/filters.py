"""Concept filtering as composable steps, each reporting what it removed and why.

A step maps a list of concepts to one reason per concept (``None`` = keep). Steps run in
order on what the previous ones kept; :class:`FilterReport` records every removal with
the step, the reason and the number that justified it, so a user can see (and argue
with) each decision. The steps follow Label-free CBM's filter (length, similarity to a
class name, near-duplicates, visibility on training images) but are independent,
configurable and testable one by one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cbm.concepts.bank import ConceptBank
from cbm.concepts.embed import TextEmbedder
from cbm.concepts.parse import concept_key
from cbm.exceptions import ConfigurationError, ValidationError


class FilterStep(Protocol):
    """One filtering rule."""

    name: str

    def reasons(self, concepts: Sequence[str]) -> list[str | None]:
        """Why each concept is removed, or ``None`` to keep it."""
        ...


@dataclass(frozen=True)
class Removal:
    """One removed concept."""

    concept: str
    step: str
    reason: str


@dataclass
class FilterReport:
    """What each step did."""

    counts: list[tuple[str, int, int]] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)

    def by_step(self) -> dict[str, list[Removal]]:
        out: dict[str, list[Removal]] = {name: [] for name, _, _ in self.counts}
        for r in self.removed:
            out[r.step].append(r)
        return out

    def summary(self) -> str:
        return "; ".join(f"{name}: {n_in} -> {n_out}" for name, n_in, n_out in self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [{"step": s, "in": a, "out": b} for s, a, b in self.counts],
            "removed": [r.__dict__ for r in self.removed],
        }


def apply_filters(
    concepts: Sequence[str], steps: Sequence[FilterStep]
) -> tuple[list[str], FilterReport]:
    """Run ``steps`` in order; return the kept concepts and the report."""
    kept = list(concepts)
    report = FilterReport()
    for step in steps:
        reasons = step.reasons(kept)
        if len(reasons) != len(kept):
            raise ConfigurationError(
                f"filter step {step.name!r} gave {len(reasons)} reasons for {len(kept)} concepts"
            )
        n_in = len(kept)
        pairs = list(zip(kept, reasons, strict=True))
        report.removed += [Removal(c, step.name, r) for c, r in pairs if r]
        kept = [c for c, r in pairs if not r]
        report.counts.append((step.name, n_in, len(kept)))
    return kept, report


def filter_bank(bank: ConceptBank, steps: Sequence[FilterStep]) -> tuple[ConceptBank, FilterReport]:
    """Filter a bank's concepts; the result records the filter report in its provenance."""
    kept, report = apply_filters(bank.concepts, steps)
    if not kept:
        raise ValidationError(f"the filters removed every concept ({report.summary()})")
    index = {c: i for i, c in enumerate(bank.concepts)}
    record = [{"step": s, "in": a, "out": b} for s, a, b in report.counts]
    return keep_concepts(bank, [index[c] for c in kept], filters=record), report


def keep_concepts(bank: ConceptBank, indices: Sequence[int], **record: Any) -> ConceptBank:
    """The bank restricted to ``indices``, with ``record`` added to its provenance.

    Unlike :meth:`ConceptBank.subset` it keeps the per-concept provenance
    (``concept_classes``) consistent and does not store the index list.
    """
    sub = bank.subset(list(indices))
    provenance = {k: v for k, v in sub.provenance.items() if k != "indices"}
    provenance.update(record)
    if "concept_classes" in provenance:
        cc = provenance["concept_classes"]
        provenance["concept_classes"] = {c: cc[c] for c in sub.concepts if c in cc}
    return dataclasses.replace(sub, provenance=provenance)


class MaxLength:
    """Remove concepts longer than ``max_chars`` characters (Label-free CBM uses 30)."""

    def __init__(self, max_chars: int = 30) -> None:
        self.max_chars = max_chars
        self.name = f"length<={max_chars}"

    def reasons(self, concepts: Sequence[str]) -> list[str | None]:
        return [
            f"{len(c)} characters > {self.max_chars}" if len(c) > self.max_chars else None
            for c in concepts
        ]


class TooSimilarToClass:
    """Remove concepts that merely restate a class name (the bottleneck would leak the label).

    A concept goes when its text embedding has cosine similarity above ``threshold`` to
    any class name's, or when it equals a class name up to case, article and plural.
    """

    def __init__(
        self, class_names: Sequence[str], embedder: TextEmbedder, threshold: float = 0.85
    ) -> None:
        self.class_names = list(class_names)
        self.embedder = embedder
        self.threshold = threshold
        self.name = f"class-similarity<={threshold:g}"
        self._class_emb = embedder.embed(self.class_names)

    def reasons(self, concepts: Sequence[str]) -> list[str | None]:
        if not concepts:
            return []
        sim = self.embedder.embed(concepts) @ self._class_emb.T
        best = sim.argmax(axis=1)
        keys = {concept_key(c): c for c in self.class_names}
        out: list[str | None] = []
        for i, c in enumerate(concepts):
            s, cls = float(sim[i, best[i]]), self.class_names[best[i]]
            if concept_key(c) in keys:
                out.append(f"is the class name {keys[concept_key(c)]!r}")
            elif s > self.threshold:
                out.append(f"similarity {s:.2f} to class {cls!r} > {self.threshold:g}")
            else:
                out.append(None)
        return out


class NearDuplicates:
    """Remove concepts whose embedding is within ``threshold`` cosine of an earlier kept one.

    Order matters: the first of a near-duplicate pair is kept, so put preferred
    concepts first (generation keeps the model's order).
    """

    def __init__(self, embedder: TextEmbedder, threshold: float = 0.9) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.name = f"near-duplicates<={threshold:g}"

    def reasons(self, concepts: Sequence[str]) -> list[str | None]:
        n = len(concepts)
        if n == 0:
            return []
        emb = self.embedder.embed(concepts)
        sim = emb @ emb.T
        np.fill_diagonal(sim, -1.0)
        keys = [concept_key(c) for c in concepts]
        out: list[str | None] = [None] * n
        kept = np.zeros(n, dtype=bool)
        first_key: dict[str, int] = {}
        for i in range(n):  # greedy in order: depends on earlier decisions, so not vectorisable
            if keys[i] in first_key:
                out[i] = f"same as {concepts[first_key[keys[i]]]!r} (case, article or plural)"
                continue
            first_key[keys[i]] = i
            if i and kept[:i].any():
                j = int(np.where(kept[:i], sim[i, :i], -np.inf).argmax())
                if sim[i, j] > self.threshold:
                    out[i] = f"similarity {sim[i, j]:.2f} to {concepts[j]!r} > {self.threshold:g}"
                    continue
            kept[i] = True
        return out


class NotVisible:
    """Remove concepts the backbone does not see on the training images.

    Label-free CBM's interpretability cut-off: a concept is visible when the mean of its
    ``top_k`` highest image-text cosine similarities reaches ``cutoff``. With
    ``cutoff=None`` the lowest ``drop_fraction`` of concepts by that score go instead.

    Parameters
    ----------
    image_embeddings
        ``(n_images, d)`` training-image embeddings from the backbone.
    encode_texts
        The backbone's text encoder (``backbone.encode_texts``).
    """

    def __init__(
        self,
        image_embeddings: np.ndarray,
        encode_texts: Callable[[Sequence[str]], np.ndarray],
        top_k: int = 5,
        cutoff: float | None = None,
        drop_fraction: float = 0.1,
        batch_size: int = 512,
    ) -> None:
        img = np.asarray(image_embeddings, dtype=np.float32)
        if img.ndim != 2 or len(img) < top_k:
            raise ValidationError(
                f"image_embeddings must be (n_images, d) with n_images >= top_k={top_k}; "
                f"got shape {img.shape}"
            )
        self.images = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
        self.encode_texts = encode_texts
        self.top_k, self.cutoff, self.drop_fraction = top_k, cutoff, drop_fraction
        self.batch_size = batch_size
        self.name = (
            f"visible(top-{top_k} mean>={cutoff:g})"
            if cutoff is not None
            else f"visible(drop lowest {drop_fraction:.0%})"
        )

    def scores(self, concepts: Sequence[str]) -> np.ndarray:
        """Mean of each concept's ``top_k`` image similarities."""
        txt = np.asarray(self.encode_texts(list(concepts)), dtype=np.float32)
        txt = txt / np.maximum(np.linalg.norm(txt, axis=1, keepdims=True), 1e-12)
        out = np.empty(len(txt), dtype=np.float32)
        for s in range(0, len(txt), self.batch_size):  # chunks bound the n x images matrix
            sim = txt[s : s + self.batch_size] @ self.images.T
            top = np.partition(sim, -self.top_k, axis=1)[:, -self.top_k :]
            out[s : s + self.batch_size] = top.mean(axis=1)
        return out

    def reasons(self, concepts: Sequence[str]) -> list[str | None]:
        if not concepts:
            return []
        sc = self.scores(concepts)
        if self.cutoff is not None:
            drop = sc < self.cutoff
            what = f"below the cut-off {self.cutoff:g}"
        else:
            drop = np.zeros(len(sc), dtype=bool)
            drop[np.argsort(sc, kind="stable")[: int(self.drop_fraction * len(sc))]] = True
            what = f"among the lowest {self.drop_fraction:.0%}"
        return [
            f"top-{self.top_k} image similarity {v:.3f} {what}" if d else None
            for v, d in zip(sc, drop, strict=True)
        ]
