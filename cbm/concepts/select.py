"""Choosing a budget of concepts that are discriminative and diverse.

The objective, for a set ``S`` of chosen concepts out of all candidates ``V``::

    F(S) = sum_{j in S} u_j  +  lam * sum_{i in V} max_{j in S} s_ij

``u_j >= 0`` is how well concept ``j`` separates the classes (modular term) and the
second term is the facility-location function over the clipped similarities
``s_ij = max(0, cos(e_i, e_j))``: it rewards choosing concepts that *cover* every
candidate, so a second near-copy of a chosen concept adds almost nothing. This is the
structure of LaBo's selection objective (discriminability + coverage). ``F`` is a sum of
a non-negative modular function and a facility-location function, hence monotone and
submodular; greedy selection under a cardinality budget is therefore within a factor
``1 - 1/e`` of the optimum (Nemhauser, Wolsey and Fisher, 1978), and the lazy variant
(Minoux, 1978) makes the same choices with far fewer gain evaluations.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from cbm.concepts.bank import ConceptBank
from cbm.concepts.embed import TextEmbedder
from cbm.concepts.filters import keep_concepts
from cbm.exceptions import ValidationError


def discriminability(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How strongly each concept's score separates some class from the rest.

    Parameters
    ----------
    scores
        ``(n_images, n_concepts)`` concept scores (e.g. image-text cosine) on training images.
    labels
        ``(n_images,)`` integer class labels.

    Returns
    -------
    numpy.ndarray
        ``(n_concepts,)``: the largest standardised class-mean deviation
        ``max_k (mean_k - mean) / std``, clipped at 0.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValidationError(
            f"scores must be (n_images, n_concepts) and labels (n_images,); "
            f"got {x.shape} and {y.shape}"
        )
    classes, inv = np.unique(y, return_inverse=True)
    onehot = np.zeros((len(y), len(classes)))
    onehot[np.arange(len(y)), inv] = 1.0
    means = (onehot.T @ x) / onehot.sum(0)[:, None]  # (n_classes, n_concepts), batched
    dev = (means - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    return np.clip(dev.max(axis=0), 0.0, None)


def greedy_submodular(
    similarity: np.ndarray, utility: np.ndarray, budget: int, diversity: float = 1.0
) -> list[int]:
    """Lazy greedy maximisation of ``F`` (see the module docstring); returns chosen indices.

    Parameters
    ----------
    similarity
        ``(n, n)`` similarities between candidates (clipped at 0 here).
    utility
        ``(n,)`` non-negative per-concept utilities ``u``.
    budget
        Number of concepts to choose (all of them if ``budget >= n``).
    diversity
        ``lam``, the weight of the coverage term.
    """
    s = np.clip(np.asarray(similarity, dtype=np.float64), 0.0, None)
    u = np.asarray(utility, dtype=np.float64)
    n = len(u)
    if s.shape != (n, n):
        raise ValidationError(f"similarity must be ({n}, {n}) for {n} utilities; got {s.shape}")
    if (u < 0).any() or not np.isfinite(u).all():
        raise ValidationError("utilities must be finite and non-negative")
    covered = np.zeros(n)
    chosen: list[int] = []
    # the gain of j only shrinks as S grows (submodularity), so a stale gain is an upper
    # bound: re-evaluate the top of the heap until it stays on top
    heap = [(-(u[j] + diversity * s[:, j].sum()), j) for j in range(n)]
    heapq.heapify(heap)
    while heap and len(chosen) < min(budget, n):
        _, j = heapq.heappop(heap)
        gain = u[j] + diversity * np.maximum(s[:, j] - covered, 0.0).sum()
        if heap and gain < -heap[0][0] - 1e-12:
            heapq.heappush(heap, (-gain, j))
            continue
        chosen.append(j)
        covered = np.maximum(covered, s[:, j])
    return chosen


def select_bank(
    bank: ConceptBank,
    embedder: TextEmbedder,
    budget: int,
    utility: Sequence[float] | np.ndarray | None = None,
    diversity: float = 1.0,
) -> ConceptBank:
    """Choose ``budget`` concepts of ``bank`` by :func:`greedy_submodular`.

    Without ``utility`` (e.g. :func:`discriminability` of training-image scores), a
    concept's utility is ``1 / (number of classes it was generated for)`` when the bank's
    provenance has ``concept_classes``, else uniform: specific concepts are preferred.
    """
    if budget < 1:
        raise ValidationError(f"budget must be at least 1, got {budget}")
    n = len(bank)
    if utility is None:
        cc = bank.provenance.get("concept_classes") or {}
        u = np.array([1.0 / max(len(cc.get(c, [])), 1) for c in bank.concepts])
    else:
        u = np.asarray(utility, dtype=np.float64)
        if u.shape != (n,):
            raise ValidationError(f"utility must have one value per concept ({n}); got {u.shape}")
    emb = embedder.embed(list(bank.prompts))
    # put both terms on the same scale: utilities at most 1 each (so at most ``budget`` in
    # all), and coverage scaled by budget / n (so at most ``budget`` in all, too)
    u = u / max(float(u.max()), 1e-12)
    chosen = sorted(greedy_submodular(emb @ emb.T, u, budget, diversity * min(budget, n) / n))
    selection = {
        "method": "lazy greedy, modular utility + facility location",
        "budget": budget,
        "diversity": diversity,
        "embedder": embedder.embedder_id,
    }
    return keep_concepts(bank, chosen, selection=selection)
