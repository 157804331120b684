"""What the workbench's Global view and suggestions compute: the head's accuracy-vs-NEC
path, intervention curves on the evaluation split, and the next concept to check.

Plain Python over the public ``cbm`` API (``cbm.interventions`` for strategies and
curves), unit-tested without Streamlit; the pages in ``app/`` only draw the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cbm.exceptions import ValidationError
from cbm.interventions import (
    STRATEGIES,
    Intervener,
    InterventionCurve,
    InterventionValues,
    intervention_curves,
)
from cbm.model import ConceptBottleneckModel

DEFAULT_STRATEGY = "ectp"
"""ECTP (expected change in the target prediction): the informed strategy that was best
or near best in our intervention study (docs/interventions.md)."""

STRATEGY_LABELS: dict[str, str] = {
    "rand": "random order",
    "ucp": "uncertainty of concept prediction",
    "lcp": "least confident concept prediction",
    "cctp": "contribution of concept to target prediction",
    "ectp": "expected change in target prediction",
    "eudtp": "expected uncertainty decrease in target prediction",
}
_MIN_GAP = 1e-6


# -- accuracy vs NEC along the head's regularisation path -------------------------------------
@dataclass(frozen=True)
class NecPath:
    """Accuracy against NEC at each solved point of the head's regularisation path.

    Attributes
    ----------
    nec, lam, train_accuracy
        ``(steps,)`` arrays in path order (strong to weak regularisation).
    val_accuracy
        ``(steps,)`` validation accuracy, or ``None`` when the fit had no validation data.
    chosen_nec
        The NEC of the saved head (the point the model uses).
    """

    nec: np.ndarray
    lam: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray | None
    chosen_nec: float

    def rows(self) -> list[dict[str, float | str]]:
        """Long-format rows (``nec``, ``accuracy``, ``split``) for a line chart."""
        out: list[dict[str, float | str]] = [
            {"nec": float(n), "accuracy": float(a), "split": "training"}
            for n, a in zip(self.nec, self.train_accuracy, strict=True)
        ]
        if self.val_accuracy is not None:
            out += [
                {"nec": float(n), "accuracy": float(a), "split": "validation"}
                for n, a in zip(self.nec, self.val_accuracy, strict=True)
                if np.isfinite(a)
            ]
        return out


def nec_path(model: ConceptBottleneckModel) -> NecPath | None:
    """The saved head's regularisation path, or ``None`` if the model has none recorded.

    Models saved before the path was stored in ``config.json`` (``head.path``) have none.
    """
    path = getattr(model.head, "path_", None)
    if not isinstance(path, dict) or "nec" not in path or "train_accuracy" not in path:
        return None
    nec = np.asarray(path["nec"], np.float64)
    if nec.size == 0:
        return None
    val = path.get("val_accuracy")
    val_arr = None if val is None else np.asarray(val, np.float64)
    if val_arr is not None and not np.isfinite(val_arr).any():
        val_arr = None
    lam = np.asarray(path.get("lam", np.full(nec.shape, np.nan)), np.float64)
    return NecPath(nec, lam, np.asarray(path["train_accuracy"], np.float64), val_arr, model.nec)


# -- interventions --------------------------------------------------------------------------
def workbench_intervener(
    model: ConceptBottleneckModel,
    absent: np.ndarray,
    present: np.ndarray,
    neutral: np.ndarray | None = None,
) -> Intervener:
    """An :class:`Intervener` whose present/absent are the workbench's own levels.

    The same values the "Set present" / "Set absent" buttons write, so a suggestion
    and the edit it leads to agree. A concept whose levels coincide (a constant score)
    gets a tiny gap so that its concept probability is defined.
    """
    lo = np.asarray(absent, np.float64)
    hi = np.maximum(np.asarray(present, np.float64), lo + _MIN_GAP)
    mid = (lo + hi) / 2 if neutral is None else np.asarray(neutral, np.float64)
    return Intervener(model, InterventionValues(hi, lo, mid, source="workbench levels"))


@dataclass(frozen=True)
class Suggestion:
    """A concept to check next, with its criterion under the chosen strategy."""

    concept: int
    name: str
    criterion: float


def suggest_concepts(
    intervener: Intervener,
    scores: np.ndarray,
    edited: set[int] | frozenset[int],
    strategy: str = DEFAULT_STRATEGY,
    top: int = 3,
    seed: int = 0,
) -> list[Suggestion]:
    """The ``top`` unchecked concepts to ask about next on one case, best first.

    The criterion is ``cbm.interventions``' selection strategy evaluated at the case's
    current (edited) scores. Concepts the user has already set are skipped, and so are
    concepts no class uses: checking them cannot change any prediction. An empty list
    means everything worth checking has been checked.
    """
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    model = intervener.model
    s = np.asarray(scores, np.float64).reshape(1, -1)
    logits = np.asarray(model.logits_from_scores(s), np.float64)
    proba = intervener.calibration.proba(s) if intervener.calibration is not None else None
    if proba is None:  # pragma: no cover - Intervener always sets a calibration
        raise ValidationError("the intervener has no concept calibration")
    rng = np.random.default_rng(seed)
    crit = intervener.criteria(strategy, s, logits, proba, rng)[0]
    usable = np.abs(np.asarray(model.weights)).sum(axis=0) > 0
    if edited:
        usable[np.fromiter(edited, dtype=np.int64)] = False
    candidates = np.flatnonzero(usable)
    if candidates.size == 0:
        return []
    order = candidates[np.argsort(-crit[candidates], kind="stable")][:top]
    names = model.bank.concepts
    return [Suggestion(int(j), names[j], float(crit[j])) for j in order]


def split_intervention_curves(
    intervener: Intervener,
    scores: np.ndarray,
    labels: np.ndarray,
    truth: np.ndarray,
    strategies: Sequence[str] = STRATEGIES,
    max_steps: int = 20,
    rand_repeats: int = 5,
    seed: int = 0,
) -> dict[str, InterventionCurve]:
    """Task error after 0..``max_steps`` true-value interventions per image, per strategy.

    The expert's answers are the workbench's present/absent levels at the ground-truth
    concepts ``truth`` ``(n, n_concepts)``; the curve stops at ``max_steps`` so that a
    bank of thousands of concepts stays interactive.
    """
    return intervention_curves(
        intervener,
        scores,
        labels,
        intervener.values.targets(truth),
        strategies,
        seed=seed,
        rand_repeats=rand_repeats,
        max_steps=max(0, int(max_steps)),
    )


def curve_rows(curves: dict[str, InterventionCurve]) -> list[dict[str, float | str]]:
    """Long-format rows (``strategy``, ``interventions``, ``error``) for a line chart."""
    return [
        {"strategy": name, "interventions": int(t), "error": float(e)}
        for name, c in curves.items()
        for t, e in zip(c.steps, c.errors, strict=True)
    ]
