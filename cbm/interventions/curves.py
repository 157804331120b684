"""Intervention curves: task error against the number of intervened units.

A curve intervenes on every image, one unit at a time in the order a strategy picks,
with the expert's answers (true values, or any target scores) applied as they come, and
records the task error after each step. Strategies are compared by their curves, the
area under them, and how many interventions they need to halve the error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cbm.exceptions import ValidationError
from cbm.interventions.procedure import Intervener, Selection
from cbm.interventions.strategies import STRATEGIES, check_strategy


@dataclass(frozen=True)
class InterventionCurve:
    """Task error after 0, 1, ..., n_units interventions per image.

    Attributes
    ----------
    strategy, granularity
        How units were chosen, and whether a unit is a concept or a group.
    errors
        ``(n_units + 1,)`` task error (fraction of images misclassified).
    """

    strategy: str
    granularity: str
    errors: np.ndarray

    @property
    def steps(self) -> np.ndarray:
        return np.arange(self.errors.shape[0])

    @property
    def auc(self) -> float:
        """Area under the error curve with the x axis scaled to [0, 1] (lower is better)."""
        return curve_auc(self.errors)

    def steps_to_reduce(self, fraction: float = 0.5) -> int | None:
        """Fewest interventions that cut the initial error by ``fraction`` (or ``None``)."""
        return steps_to_error(self.errors, (1.0 - fraction) * float(self.errors[0]))

    def to_dict(self) -> dict[str, object]:
        return {
            "strategy": self.strategy,
            "granularity": self.granularity,
            "errors": [float(e) for e in self.errors],
            "auc": self.auc,
            "steps_to_halve_error": self.steps_to_reduce(0.5),
        }


def curve_auc(errors: np.ndarray) -> float:
    """Trapezoidal area under ``errors`` over ``[0, 1]`` (pure function)."""
    e = np.asarray(errors, np.float64)
    if e.size < 2:
        return float(e[0]) if e.size else float("nan")
    return float(((e[1:] + e[:-1]) / 2).mean())


def steps_to_error(errors: np.ndarray, level: float) -> int | None:
    """First step at which ``errors`` is at or below ``level`` (``None`` if never)."""
    hits = np.flatnonzero(np.asarray(errors) <= level + 1e-12)
    return int(hits[0]) if hits.size else None


def _steps(n_units: int, max_steps: int | None) -> int:
    """Points on a curve: every unit, or at most ``max_steps`` of them."""
    if max_steps is None:
        return n_units
    if max_steps < 0:
        raise ValidationError(f"max_steps must be >= 0, got {max_steps}")
    return min(int(max_steps), n_units)


def intervention_curve(
    intervener: Intervener,
    scores: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    strategy: str,
    seed: int = 0,
    repeats: int = 1,
    max_steps: int | None = None,
) -> InterventionCurve:
    """The error curve of one strategy over a batch of images.

    ``repeats`` averages that many seeds (useful for ``rand`` only; the informed
    strategies are deterministic). ``max_steps`` stops the curve after that many
    interventions per image (default: every unit), so a bank of thousands of
    concepts stays interactive.
    """
    strategy = check_strategy(strategy)
    n_units = _steps(len(intervener.units), max_steps)
    return _mean_curve(
        intervener,
        strategy,
        n_units,
        repeats,
        lambda r: intervener.select(scores, strategy, n_units, targets, labels, seed=seed + r),
    )


def batch_intervention_curve(
    intervener: Intervener,
    scores: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    strategy: str,
    seed: int = 0,
    repeats: int = 1,
    max_steps: int | None = None,
) -> InterventionCurve:
    """The error curve when the budget is shared by the batch.

    Point ``t`` is the task error after ``t * n_images`` interventions spent wherever
    the strategy ranks the (image, unit) pairs highest (``t`` units per image on
    average; some images get more, some none), in ``n_units`` rounds with the answers
    applied after each, so the x axis matches :func:`intervention_curve`'s (and so
    does ``max_steps``).
    """
    strategy = check_strategy(strategy)
    n_units = _steps(len(intervener.units), max_steps)
    n = int(np.atleast_2d(scores).shape[0])
    return _mean_curve(
        intervener,
        strategy,
        n_units,
        repeats,
        lambda r: intervener.select_batch(
            scores, strategy, n * n_units, targets, n_units, seed + r, labels
        ),
    )


def _mean_curve(
    intervener: Intervener,
    strategy: str,
    n_units: int,
    repeats: int,
    run: Callable[[int], Selection],
) -> InterventionCurve:
    """Average the error curves of ``run(seed offset)`` over ``repeats`` runs (``rand``
    only; the informed strategies are deterministic, so they run once)."""
    runs = max(1, repeats if strategy == "rand" else 1)
    errors = np.zeros(n_units + 1)
    for r in range(runs):
        sel = run(r)
        if sel.errors is not None:
            errors += sel.errors
    return InterventionCurve(strategy, intervener.granularity, errors / runs)


def intervention_curves(
    intervener: Intervener,
    scores: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    strategies: Sequence[str] = STRATEGIES,
    seed: int = 0,
    rand_repeats: int = 5,
    budget: str = "image",
    max_steps: int | None = None,
) -> dict[str, InterventionCurve]:
    """Curves of several strategies on the same images and answers.

    ``budget="image"``: every image gets the same number of interventions
    (:func:`intervention_curve`); ``"batch"``: the batch shares them
    (:func:`batch_intervention_curve`). ``max_steps`` stops every curve after that
    many interventions per image (default: every unit).
    """
    if budget not in ("image", "batch"):
        raise ValidationError(f"budget must be 'image' or 'batch', got {budget!r}")
    curve = intervention_curve if budget == "image" else batch_intervention_curve
    return {
        s: curve(intervener, scores, labels, targets, s, seed, rand_repeats, max_steps)
        for s in (check_strategy(x) for x in strategies)
    }


def curves_table(curves: dict[str, InterventionCurve], fraction: float = 0.5) -> list[dict]:
    """One row per strategy: initial and final error, AUC, steps to cut the error."""
    return [
        {
            "strategy": name,
            "error_0": float(c.errors[0]),
            "error_end": float(c.errors[-1]),
            "auc": c.auc,
            "steps_to_reduce": c.steps_to_reduce(fraction),
        }
        for name, c in curves.items()
    ]
