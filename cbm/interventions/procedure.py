"""The intervention procedure: select units, ask the (simulated) expert, re-predict.

:class:`Intervener` binds a fitted model (read only), the meaning of present/absent
(:class:`~cbm.interventions.values.InterventionValues`), the concept probabilities the
criteria use (:class:`~cbm.interventions.values.ConceptCalibration`) and a granularity
(single concepts or the bank's groups). It never writes to the model: every step works
on its own copy of the scores and of the logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cbm.exceptions import ValidationError
from cbm.interventions.groups import check_group_outcomes, group_criteria
from cbm.interventions.strategies import (
    DYNAMIC,
    Units,
    check_strategy,
    concept_criteria,
    unit_criteria,
)
from cbm.interventions.values import ConceptCalibration, InterventionValues


@dataclass
class Selection:
    """Which units were chosen, per image, and the scores after intervening on them.

    Attributes
    ----------
    chosen
        ``(n, n_units)`` bool: unit ``u`` of image ``i`` was intervened on.
    order
        ``(n, budget)`` unit indices in the order chosen by :meth:`Intervener.select`;
        from :meth:`Intervener.select_batch`, ``(n, n_units)`` with the chosen unit
        indices in place and ``-1`` elsewhere.
    units
        The units (concepts or groups).
    scores
        ``(n, k)`` scores after intervention (a copy), or ``None`` without targets.
    errors
        Task error after each step when labels were given: ``(steps + 1,)``.
    """

    chosen: np.ndarray
    order: np.ndarray
    units: Units
    scores: np.ndarray | None = None
    errors: np.ndarray | None = None

    def names(self, i: int = 0) -> list[str]:
        return [self.units.names[u] for u in self.order[i] if u >= 0]


@dataclass
class Intervener:
    """Test-time interventions on a fitted linear-head concept bottleneck model.

    Parameters
    ----------
    model
        Duck-typed: ``logits_from_scores``, ``weights`` ``(n_classes, k)``,
        ``bank.concepts`` and ``bank.groups``. Never modified.
    values
        What "present" and "absent" mean per concept.
    calibration
        Concept probabilities for the criteria; default
        ``ConceptCalibration.from_values(values)`` (label-free).
    granularity
        ``"concept"`` or ``"group"``.
    group_outcomes
        What the expert may answer for a group (group granularity only):
        ``"exclusive"`` (default; exactly one member is true, as in one-hot dimensions
        like colour) or ``"independent"`` (multi-label groups); see
        :mod:`cbm.interventions.groups`.
    """

    model: Any
    values: InterventionValues
    calibration: ConceptCalibration | None = None
    granularity: str = "concept"
    group_outcomes: str = "exclusive"
    units: Units = field(init=False)

    def __post_init__(self) -> None:
        if self.calibration is None:
            self.calibration = ConceptCalibration.from_values(self.values)
        check_group_outcomes(self.group_outcomes)
        bank = self.model.bank
        self.units = Units.of(self.granularity, bank.concepts, bank.groups)
        if len(self.values) != len(bank.concepts):
            raise ValidationError(
                f"intervention values cover {len(self.values)} concepts, the model "
                f"{len(bank.concepts)}"
            )

    # -- building blocks ---------------------------------------------------------------
    def _calibration(self) -> ConceptCalibration:
        if self.calibration is None:
            self.calibration = ConceptCalibration.from_values(self.values)
        return self.calibration

    def _check(self, scores: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
        s = np.array(np.atleast_2d(scores), dtype=np.float64, copy=True)
        k = len(self.values)
        if s.ndim != 2 or s.shape[1] != k:
            raise ValidationError(f"scores must be (n, {k}), got {np.shape(scores)}")
        if targets is not None and np.shape(np.atleast_2d(targets)) != s.shape:
            raise ValidationError(
                f"targets must have the scores' shape {s.shape}, got {np.shape(targets)}"
            )
        return s

    def criteria(
        self,
        strategy: str,
        scores: np.ndarray,
        logits: np.ndarray,
        proba: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Unit criteria ``(n, n_units)`` at the current scores; higher = sooner."""
        if strategy == "rand":
            return rng.random((scores.shape[0], len(self.units)))
        weights = np.asarray(self.model.weights, np.float64)
        if not self.units.is_identity and strategy != "cctp":
            return group_criteria(
                strategy,
                scores,
                logits,
                proba,
                weights,
                self.values.present,
                self.values.absent,
                self.units,
                self.group_outcomes,
            )
        per_concept = concept_criteria(
            strategy,
            scores,
            logits,
            proba,
            weights,
            self.values.present,
            self.values.absent,
            self.values.neutral,
        )
        return unit_criteria(strategy, per_concept, self.units)

    # -- per-image budget ------------------------------------------------------------------
    def select(
        self,
        scores: np.ndarray,
        strategy: str,
        budget: int,
        targets: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        seed: int = 0,
    ) -> Selection:
        """Choose ``budget`` units per image, greedily.

        With ``targets`` (the expert's answers, e.g. ``values.targets(truth)``) each
        answer is applied before the next choice, so ECTP/EUDTP see the updated
        prediction; without, the units are ranked once at the current scores.
        ``labels`` additionally records the task error after every step.
        """
        strategy = check_strategy(strategy)
        s = self._check(scores, targets)
        n, n_units = s.shape[0], len(self.units)
        budget = int(budget)
        if budget < 0:
            raise ValidationError(f"budget must be non-negative, got {budget}")
        budget = min(budget, n_units)
        rng = np.random.default_rng(seed)
        weights = np.asarray(self.model.weights, np.float64)
        logits = np.asarray(self.model.logits_from_scores(s), np.float64).copy()
        proba = self._calibration().proba(s)
        done = np.zeros((n, n_units), bool)
        order = np.full((n, budget), -1, dtype=np.int64)
        errors = None
        if labels is not None:
            y = np.asarray(labels)
            errors = np.empty(budget + 1)
            errors[0] = np.mean(logits.argmax(1) != y)
        crit = self.criteria(strategy, s, logits, proba, rng)
        rows = np.arange(n)
        tgt = None if targets is None else np.atleast_2d(np.asarray(targets, np.float64))
        for t in range(budget):
            if t and tgt is not None and strategy in DYNAMIC:
                crit = self.criteria(strategy, s, logits, proba, rng)
            choice = np.where(done, -np.inf, crit).argmax(axis=1)
            order[:, t] = choice
            done[rows, choice] = True
            if tgt is not None:
                members = self.units.membership[choice]
                new = np.where(members, tgt, s)
                logits += (new - s) @ weights.T
                s = new
                if errors is not None:
                    errors[t + 1] = np.mean(logits.argmax(1) != y)
        return Selection(done, order, self.units, s if tgt is not None else None, errors)

    # -- budget shared over a batch ----------------------------------------------------
    def select_batch(
        self,
        scores: np.ndarray,
        strategy: str,
        budget: int,
        targets: np.ndarray | None = None,
        rounds: int = 1,
        seed: int = 0,
        labels: np.ndarray | None = None,
    ) -> Selection:
        """Spend ``budget`` interventions over the whole batch where they help most.

        The batch's (image, unit) pairs compete on their criteria; in each of ``rounds``
        rounds the best remaining pairs take an equal share of the budget, and with
        ``targets`` their answers are applied before the next round. ``labels`` (with
        ``targets``) records the task error after every round: ``(rounds + 1,)``.
        """
        strategy = check_strategy(strategy)
        s = self._check(scores, targets)
        n, n_units = s.shape[0], len(self.units)
        budget = min(int(budget), n * n_units)
        if budget < 0 or rounds < 1:
            raise ValidationError(f"need budget >= 0 and rounds >= 1, got {budget}, {rounds}")
        rng = np.random.default_rng(seed)
        weights = np.asarray(self.model.weights, np.float64)
        logits = np.asarray(self.model.logits_from_scores(s), np.float64).copy()
        proba = self._calibration().proba(s)
        done = np.zeros((n, n_units), bool)
        tgt = None if targets is None else np.atleast_2d(np.asarray(targets, np.float64))
        errors = None
        if labels is not None and tgt is not None:
            y = np.asarray(labels)
            errors = np.full(rounds + 1, np.mean(logits.argmax(1) != y))
        spent = 0
        for r in range(rounds):
            take = (budget - spent) // (rounds - r)
            if take <= 0:
                if errors is not None:
                    errors[r + 1] = errors[r]
                continue
            crit = np.where(done, -np.inf, self.criteria(strategy, s, logits, proba, rng))
            flat = np.argpartition(-crit.ravel(), take - 1)[:take]
            pick = np.zeros(n * n_units, bool)
            pick[flat] = True
            pick = pick.reshape(n, n_units)
            done |= pick
            spent += take
            if tgt is not None:
                members = (pick.astype(np.float64) @ self.units.membership) > 0
                new = np.where(members, tgt, s)
                logits += (new - s) @ weights.T
                s = new
                if errors is not None:
                    errors[r + 1] = np.mean(logits.argmax(1) != y)
        order = np.where(done, np.arange(n_units), -1)
        return Selection(done, order, self.units, s if tgt is not None else None, errors)
