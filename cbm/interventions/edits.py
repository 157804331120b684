"""Edits of concept scores: always on a copy, never on the model.

An :class:`Edit` names a concept (by name or index) and what to do with it:

``present`` / ``absent``
    set the score to the concept's "present" / "absent" value
    (:class:`~cbm.interventions.values.InterventionValues`);
``value``
    set the score to ``value``;
``scale``
    multiply the score by ``value``;
``remove``
    set the score to the concept's neutral value (training mean), so it contributes
    nothing beyond the average image.

:func:`edit_prediction` is the "fix this image" entry point: scores in, edited scores
and the prediction before and after out.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cbm.exceptions import ValidationError
from cbm.interventions.values import InterventionValues

Operation = Literal["present", "absent", "value", "scale", "remove"]
OPERATIONS: tuple[str, ...] = ("present", "absent", "value", "scale", "remove")


@dataclass(frozen=True)
class Edit:
    """One change to one concept's score.

    Parameters
    ----------
    concept
        Concept name or index.
    op
        One of ``present``, ``absent``, ``value``, ``scale``, ``remove``.
    value
        The score for ``value``, the factor for ``scale``; ignored otherwise.
    """

    concept: str | int
    op: Operation = "present"
    value: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPERATIONS:
            raise ValidationError(f"unknown edit {self.op!r}; use one of {', '.join(OPERATIONS)}")
        if self.op in ("value", "scale") and (
            self.value is None or not np.isfinite(float(self.value))
        ):
            raise ValidationError(f"edit {self.op!r} of {self.concept!r} needs a finite value")


def concept_index(concept: str | int, names: Sequence[str]) -> int:
    """Resolve a concept name or index against ``names``."""
    if isinstance(concept, (int, np.integer)) and not isinstance(concept, bool):
        if not 0 <= int(concept) < len(names):
            raise ValidationError(
                f"concept index {concept} is out of range for {len(names)} concepts"
            )
        return int(concept)
    try:
        return list(names).index(str(concept))
    except ValueError:
        close = difflib.get_close_matches(str(concept), list(names), n=3, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else f" (concepts: {list(names)[:8]}...)"
        raise ValidationError(f"unknown concept {concept!r}{hint}") from None


def group_members(groups: Sequence[str], group: str) -> np.ndarray:
    """Indices of the concepts in ``group`` (e.g. ``"colour"``)."""
    if not groups:
        raise ValidationError("this concept bank has no groups; intervene on concepts instead")
    idx = np.flatnonzero(np.asarray(groups) == group)
    if idx.size == 0:
        raise ValidationError(f"unknown group {group!r}; groups: {sorted(set(groups))}")
    return idx


def apply_edits(
    scores: np.ndarray,
    edits: Sequence[Edit],
    values: InterventionValues,
    concept_names: Sequence[str] | None = None,
) -> np.ndarray:
    """A copy of ``scores`` (``(n, k)`` or ``(k,)``) with ``edits`` applied to every row.

    Edits apply in order, so a later edit of the same concept wins.
    """
    out = np.array(scores, dtype=np.float64, copy=True)
    k = out.shape[-1]
    if len(values) != k:
        raise ValidationError(f"scores have {k} concepts but the intervention values {len(values)}")
    names = concept_names if concept_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValidationError(f"scores have {k} concepts but {len(names)} concept names")
    for edit in edits:
        j = concept_index(edit.concept, names)
        if edit.op == "present":
            out[..., j] = values.present[j]
        elif edit.op == "absent":
            out[..., j] = values.absent[j]
        elif edit.op == "remove":
            out[..., j] = values.neutral[j]
        elif edit.op == "value":
            out[..., j] = float(edit.value)  # type: ignore[arg-type]
        else:
            out[..., j] *= float(edit.value)  # type: ignore[arg-type]
    return out


def intervene(scores: np.ndarray, mask: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """A copy of ``scores`` with the entries under ``mask`` replaced by ``targets``.

    The batched primitive behind selection and curves: ``mask`` is ``(n, k)`` bool,
    ``targets`` ``(n, k)`` or ``(k,)``.
    """
    s = np.asarray(scores, np.float64)
    m = np.asarray(mask, bool)
    if m.shape != s.shape:
        raise ValidationError(f"mask shape {m.shape} differs from scores shape {s.shape}")
    return np.where(m, np.broadcast_to(np.asarray(targets, np.float64), s.shape), s)


@dataclass
class EditResult:
    """Scores and predictions before and after a set of edits."""

    scores_before: np.ndarray
    scores_after: np.ndarray
    proba_before: np.ndarray
    proba_after: np.ndarray
    class_names: tuple[str, ...]

    @property
    def predicted_before(self) -> np.ndarray:
        return self.proba_before.argmax(axis=1)

    @property
    def predicted_after(self) -> np.ndarray:
        return self.proba_after.argmax(axis=1)

    def summary(self, i: int = 0) -> str:
        """One line per image: class and probability before -> after."""
        b, a = int(self.predicted_before[i]), int(self.predicted_after[i])
        return (
            f"{self.class_names[b]} (p={self.proba_before[i, b]:.2f}) -> "
            f"{self.class_names[a]} (p={self.proba_after[i, a]:.2f})"
        )


def edit_prediction(
    model: Any, scores: np.ndarray, edits: Sequence[Edit], values: InterventionValues
) -> EditResult:
    """Fix one image (or many): apply ``edits`` to a copy of ``scores`` and re-predict.

    Parameters
    ----------
    model
        Anything with ``proba_from_scores``, ``bank.concepts`` and ``class_names``
        (a fitted :class:`~cbm.model.ConceptBottleneckModel`); it is not modified.
    scores
        ``(n, k)`` or ``(k,)`` concept scores, e.g. ``model.concept_scores(emb)``.
    edits
        What to change.
    values
        What "present", "absent" and "remove" mean for each concept.
    """
    before = np.atleast_2d(np.array(scores, dtype=np.float64, copy=True))
    after = apply_edits(before, edits, values, model.bank.concepts)
    return EditResult(
        scores_before=before,
        scores_after=after,
        proba_before=model.proba_from_scores(before),
        proba_after=model.proba_from_scores(after),
        class_names=tuple(model.class_names),
    )
