"""What "present" and "absent" mean for unbounded concept scores, and concept probabilities.

CLIP-style concept scores (standardised cosines) have no natural 0 and 1. An expert who
says "this bird *has* a red crown" has to be turned into a number, and a selection
strategy that asks "how unsure is the model about this concept?" needs a probability.
This module holds both translations, fitted on training scores:

* :class:`InterventionValues` -- per-concept score of "present", "absent" and "neutral"
  (the value :func:`~cbm.interventions.edits.apply_edits` writes for ``remove``). From
  percentiles of each concept's training scores (label-free, configurable), or from
  ground truth (median score of training images where the concept is truly
  present/absent).
* :class:`ConceptCalibration` -- ``p_j(s) = sigmoid(a_j * s + b_j)`` per concept. With
  ground truth it is a one-feature logistic regression of the concept's label on its
  score (scikit-learn); without, it is the logistic curve that puts probability
  ``confidence`` on the "present" value and ``1 - confidence`` on the "absent" value.
  This is the "concept probability" that UCP, LCP, ECTP and EUDTP use (Shin et al.
  define them on sigmoid concept outputs, which CLIP scores are not).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from cbm.exceptions import ConfigurationError, ValidationError


def _check_scores(scores: np.ndarray, what: str = "concept scores") -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValidationError(f"{what} must be a 2-D array (images, concepts), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValidationError(f"{what} contain NaN or infinite values")
    return arr


def _check_truth(truth: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(truth)
    if arr.shape != shape:
        raise ValidationError(
            f"ground-truth concepts have shape {arr.shape}, but the scores have shape {shape}"
        )
    if not np.isin(arr, (0, 1)).all():
        raise ValidationError("ground-truth concepts must be binary (0/1)")
    return arr.astype(bool)


@dataclass(frozen=True)
class InterventionValues:
    """Per-concept scores that stand for "present", "absent" and "removed".

    Attributes
    ----------
    present, absent, neutral
        ``(n_concepts,)`` score values.
    source
        How they were obtained (recorded for reports).
    """

    present: np.ndarray
    absent: np.ndarray
    neutral: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        arrays = [np.asarray(a, np.float64) for a in (self.present, self.absent, self.neutral)]
        if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
            raise ValidationError(
                "present, absent and neutral must be 1-D arrays of one value per concept, got "
                f"shapes {[a.shape for a in arrays]}"
            )
        for name, a in zip(("present", "absent", "neutral"), arrays, strict=True):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return int(self.present.shape[0])

    @classmethod
    def from_percentiles(
        cls, train_scores: np.ndarray, present: float = 95.0, absent: float = 5.0
    ) -> InterventionValues:
        """Present/absent at high/low percentiles of each concept's training scores.

        Needs no labels; "neutral" is the training mean (0 for standardised scores).
        """
        if not 0.0 <= absent < present <= 100.0:
            raise ConfigurationError(
                f"need 0 <= absent < present <= 100 percentiles, got absent={absent}, "
                f"present={present}"
            )
        s = _check_scores(train_scores, "training concept scores")
        lo, hi = np.percentile(s, [absent, present], axis=0)
        return cls(hi, lo, s.mean(axis=0), source=f"percentiles {absent:g}/{present:g}")

    @classmethod
    def from_ground_truth(
        cls, train_scores: np.ndarray, train_concepts: np.ndarray
    ) -> InterventionValues:
        """Present/absent as the median training score where the concept is truly so.

        Concepts never (or always) present in training fall back to the 95th (5th)
        percentile of their scores.
        """
        s = _check_scores(train_scores, "training concept scores")
        truth = _check_truth(train_concepts, s.shape)
        fallback = cls.from_percentiles(s)
        masked_pos = np.where(truth, s, np.nan)
        masked_neg = np.where(truth, np.nan, s)
        with warnings.catch_warnings():  # all-NaN columns: handled by the fallback below
            warnings.simplefilter("ignore", RuntimeWarning)
            pos = np.nanmedian(masked_pos, axis=0)
            neg = np.nanmedian(masked_neg, axis=0)
        pos = np.where(np.isnan(pos), fallback.present, pos)
        neg = np.where(np.isnan(neg), fallback.absent, neg)
        return cls(pos, neg, s.mean(axis=0), source="ground-truth medians")

    def targets(self, concepts: np.ndarray) -> np.ndarray:
        """The score each concept would take if set to its true value, ``(n, k)``."""
        truth = _check_truth(concepts, (np.asarray(concepts).shape[0], len(self)))
        return np.where(truth, self.present, self.absent)


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class ConceptCalibration:
    """Concept probabilities ``sigmoid(slope * score + intercept)``, per concept."""

    slope: np.ndarray
    intercept: np.ndarray
    source: str = ""

    @classmethod
    def from_values(
        cls, values: InterventionValues, confidence: float = 0.95
    ) -> ConceptCalibration:
        """Label-free: p(present value) = ``confidence``, p(absent value) = 1 - that."""
        if not 0.5 < confidence < 1.0:
            raise ConfigurationError(f"confidence must lie in (0.5, 1), got {confidence}")
        gap = values.present - values.absent
        if (gap <= 0).any():
            bad = np.flatnonzero(gap <= 0).tolist()
            raise ValidationError(
                f"concepts {bad} have a 'present' value not above their 'absent' value; "
                "a calibration needs present > absent"
            )
        slope = 2.0 * _logit(confidence) / gap
        intercept = -slope * (values.present + values.absent) / 2.0
        return cls(slope, intercept, source=f"values at p={confidence:g}")

    @classmethod
    def from_ground_truth(
        cls, train_scores: np.ndarray, train_concepts: np.ndarray, C: float = 1.0
    ) -> ConceptCalibration:
        """Per-concept logistic regression of the true concept on its own score.

        A loop over concepts (each fit is a 1-feature scikit-learn model); concepts with
        one label only get a flat probability at their training frequency.
        """
        s = _check_scores(train_scores, "training concept scores")
        truth = _check_truth(train_concepts, s.shape)
        k = s.shape[1]
        slope, intercept = np.zeros(k), np.zeros(k)
        for j in range(k):
            rate = truth[:, j].mean()
            if rate in (0.0, 1.0):
                intercept[j] = _logit(float(np.clip(rate, 1e-3, 1 - 1e-3)))
                continue
            fit = LogisticRegression(C=C).fit(s[:, j : j + 1], truth[:, j])
            slope[j], intercept[j] = float(fit.coef_[0, 0]), float(fit.intercept_[0])
        return cls(slope, intercept, source="logistic fit to ground truth")

    def proba(self, scores: np.ndarray) -> np.ndarray:
        """Probability that each concept is present, same shape as ``scores``."""
        s = np.asarray(scores, np.float64)
        if s.shape[-1] != self.slope.shape[0]:
            raise ValidationError(
                f"scores have {s.shape[-1]} concepts, the calibration {self.slope.shape[0]}"
            )
        z = s * self.slope + self.intercept
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, overflow-free
