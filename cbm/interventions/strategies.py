"""Which concept to ask the expert about next: the selection criteria of Shin et al.

Shin, Jo, Lee, Lee, "A Closer Look at the Intervention Procedure of Concept Bottleneck
Models" (ICML 2023) score every not-yet-intervened concept and intervene on the best:

``rand``   a uniform random order;
``ucp``    uncertainty of the concept prediction: entropy of ``p_j``;
``lcp``    least confident concept prediction: ``1 - max(p_j, 1 - p_j)``;
``cctp``   contribution of the concept to the target prediction:
           ``sum_c |(s_j - neutral_j) * W[c, j]|`` over all class logits;
``ectp``   expected change in the target prediction:
           ``p_j KL(f(s | j present) || f(s)) + (1 - p_j) KL(f(s | j absent) || f(s))``;
``eudtp``  expected uncertainty decrease in the target prediction:
           ``H(f(s)) - [p_j H(f(s | j present)) + (1 - p_j) H(f(s | j absent))]``.

``p_j`` is the concept probability of :class:`~cbm.interventions.values.ConceptCalibration`
(evaluated on the model's own, un-intervened scores: the criteria may not peek at the
truth), ``f`` the softmax over class logits and ``W`` the linear head. ECTP and EUDTP are
re-evaluated after every intervention, because the prediction they compare against moves.

At concept level UCP and LCP rank concepts identically (both are monotone in
``|p_j - 0.5|``); they differ on groups. A *unit* is what one intervention sets: one
concept, or one group of concepts (e.g. every colour concept at once). For groups,
UCP, LCP, ECTP and EUDTP are the same definitions applied to the group's possible
answers (:mod:`cbm.interventions.groups`); CCTP is the sum over members (the group's
total contribution).

Everything is batched over images and candidates; the ``(images x candidates x
classes)`` temporaries of ECTP/EUDTP are built in image chunks of bounded size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cbm.exceptions import ValidationError

STRATEGIES: tuple[str, ...] = ("rand", "ucp", "lcp", "cctp", "ectp", "eudtp")
DYNAMIC: frozenset[str] = frozenset({"ectp", "eudtp"})
_CHUNK_ELEMENTS = 1 << 21
_FLOOR = -1e9  # stands in for -inf logits (classes unseen in training)


def check_strategy(name: str) -> str:
    key = name.lower()
    if key not in STRATEGIES:
        raise ValidationError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    return key


@dataclass(frozen=True)
class Units:
    """The things one intervention sets: single concepts or groups of them.

    Attributes
    ----------
    membership
        ``(n_units, n_concepts)`` bool; each concept belongs to at most one unit.
    names
        One name per unit.
    """

    membership: np.ndarray
    names: tuple[str, ...]

    @property
    def is_identity(self) -> bool:
        m = self.membership
        return m.shape[0] == m.shape[1] and bool((m == np.eye(m.shape[0], dtype=bool)).all())

    def __len__(self) -> int:
        return int(self.membership.shape[0])

    @classmethod
    def concepts(cls, names: Sequence[str]) -> Units:
        return cls(np.eye(len(names), dtype=bool), tuple(names))

    @classmethod
    def groups(cls, groups: Sequence[str]) -> Units:
        """One unit per distinct group label, in order of first appearance."""
        if not groups:
            raise ValidationError(
                "group granularity needs a concept bank with groups (ConceptBank.groups)"
            )
        labels = list(dict.fromkeys(groups))
        arr = np.asarray(groups)
        return cls(np.stack([arr == g for g in labels]), tuple(labels))

    @classmethod
    def of(cls, granularity: str, names: Sequence[str], groups: Sequence[str]) -> Units:
        if granularity == "concept":
            return cls.concepts(names)
        if granularity == "group":
            return cls.groups(groups)
        raise ValidationError(f"granularity must be 'concept' or 'group', got {granularity!r}")


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _entropy_and_kl(new_logits: np.ndarray, log_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy of softmax(new) and KL(softmax(new) || q), reduced over the last axis."""
    log_p = _log_softmax(new_logits)
    p = np.exp(log_p)
    return -(p * log_p).sum(-1), (p * (log_p - log_q)).sum(-1)


def _outcome_terms(
    logits: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    present: np.ndarray,
    absent: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Entropies and KLs after setting each concept present / absent, each ``(n, k)``.

    Concepts without any head weight cannot move the prediction: their KL is 0 and
    their entropy the current one, so only the active columns are computed (a sparse
    head over a large bank has few).
    """
    n, k = scores.shape
    logits = np.maximum(logits, _FLOOR)
    log_q_all = _log_softmax(logits)
    h_now = -(np.exp(log_q_all) * log_q_all).sum(-1, keepdims=True)
    out = [np.broadcast_to(h_now, (n, k)).copy(), np.zeros((n, k))]
    out += [out[0].copy(), np.zeros((n, k))]
    active = np.flatnonzero(np.abs(weights).sum(axis=0) > 0)
    if active.size == 0:
        return tuple(out)
    wt = weights[:, active].T  # (a, C)
    step = max(1, _CHUNK_ELEMENTS // max(1, active.size * weights.shape[0]))
    for lo in range(0, n, step):
        sl = slice(lo, lo + step)
        base = logits[sl][:, None, :]
        log_q = log_q_all[sl][:, None, :]
        for o, target in enumerate((present[active], absent[active])):
            delta = (target[None, :] - scores[sl][:, active])[:, :, None] * wt[None]
            h, kl = _entropy_and_kl(base + delta, log_q)
            out[2 * o][sl, active], out[2 * o + 1][sl, active] = h, kl
    return tuple(out)


def concept_criteria(
    strategy: str,
    scores: np.ndarray,
    logits: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    present: np.ndarray,
    absent: np.ndarray,
    neutral: np.ndarray,
) -> np.ndarray:
    """Per-concept criterion ``(n, k)`` (higher = intervene sooner); not for ``rand``."""
    if strategy == "ucp":
        p = np.clip(proba, 1e-12, 1 - 1e-12)
        return -(p * np.log(p) + (1 - p) * np.log1p(-p))
    if strategy == "lcp":
        return 1.0 - np.maximum(proba, 1.0 - proba)
    if strategy == "cctp":
        return np.abs(scores - neutral) * np.abs(weights).sum(axis=0)
    h1, kl1, h0, kl0 = _outcome_terms(logits, scores, weights, present, absent)
    if strategy == "ectp":
        return proba * kl1 + (1 - proba) * kl0
    if strategy == "eudtp":
        log_q = _log_softmax(np.maximum(logits, _FLOOR))
        h_now = -(np.exp(log_q) * log_q).sum(-1, keepdims=True)
        return h_now - (proba * h1 + (1 - proba) * h0)
    raise ValidationError(f"no criterion for strategy {strategy!r}")


def unit_criteria(strategy: str, per_concept: np.ndarray, units: Units) -> np.ndarray:
    """Aggregate per-concept criteria ``(n, k)`` to units ``(n, n_units)``.

    The sum for ``cctp``, the largest member for ``lcp``, the mean otherwise. The
    :class:`~cbm.interventions.procedure.Intervener` uses it for ``cctp`` only; the
    other criteria of a group come from its outcomes (:mod:`cbm.interventions.groups`).
    """
    if units.is_identity:
        return per_concept
    m = units.membership.astype(np.float64)
    if strategy == "cctp":
        return per_concept @ m.T
    if strategy == "lcp":
        masked = np.where(units.membership[None], per_concept[:, None, :], -np.inf)
        return masked.max(axis=-1)
    return (per_concept @ m.T) / np.maximum(m.sum(axis=1), 1.0)
