"""Edits the workbench makes: one case's concept scores (local) and the head (global).

Both kinds work on copies: a case edit changes a copy of one row of concept scores and
re-reads the head through :meth:`ConceptBottleneckModel.logits_from_scores`; a global
edit zeroes head columns of a deep copy of the model. The loaded model is never mutated
and a saved model directory is never overwritten.
"""

from __future__ import annotations

import copy
import datetime as _dt
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import cbm
from cbm.app_support import EVALUATION_FILE
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.model import ConceptBottleneckModel

PRESENT_PERCENTILE = 95.0
ABSENT_PERCENTILE = 5.0


# -- local edits of one case ----------------------------------------------------------------
def concept_levels(scores: np.ndarray | None, n_concepts: int) -> tuple[np.ndarray, np.ndarray]:
    """Score values that mean "absent" and "present" for each concept.

    Following the usual CBM intervention protocol, these are the 5th and 95th
    percentiles of each concept's score over a reference split; without one, the
    standardised scores' -2 and +2.
    """
    if scores is None or len(scores) < 2:
        return np.full(n_concepts, -2.0), np.full(n_concepts, 2.0)
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[1] != n_concepts:
        raise ValidationError(f"reference scores must be (n, {n_concepts}), got {s.shape}")
    absent, present = np.percentile(s, [ABSENT_PERCENTILE, PRESENT_PERCENTILE], axis=0)
    return absent, present


@dataclass(frozen=True)
class CaseEdit:
    """One user edit of one concept, as kept in the history and exported."""

    concept: int
    name: str
    kind: str
    before: float
    after: float


@dataclass(frozen=True)
class CaseView:
    """A case's prediction from (possibly edited) concept scores."""

    scores: np.ndarray
    logits: np.ndarray
    proba: np.ndarray
    predicted: int

    def contributions(self, model: ConceptBottleneckModel, cls: int) -> np.ndarray:
        """Per-concept contribution (score x weight) to class ``cls``'s logit."""
        return self.scores * model.weights[cls]


def edited_scores(original: np.ndarray, edits: dict[int, float]) -> np.ndarray:
    """A copy of one case's scores ``(n_concepts,)`` with ``edits`` (index -> value) set."""
    out = np.array(original, dtype=np.float64, copy=True)
    if edits:
        idx = np.fromiter(edits.keys(), dtype=np.int64, count=len(edits))
        if idx.min() < 0 or idx.max() >= out.shape[0]:
            raise ValidationError(
                f"concept indices must lie in 0..{out.shape[0] - 1}, got {sorted(edits)}"
            )
        out[idx] = np.fromiter(edits.values(), dtype=np.float64, count=len(edits))
    return out


def view_case(model: ConceptBottleneckModel, scores: np.ndarray) -> CaseView:
    """Logits, probabilities and prediction of one case's ``(n_concepts,)`` scores."""
    row = np.asarray(scores, np.float64)[None, :]
    logits = model.logits_from_scores(row)[0]
    z = logits - logits.max()
    e = np.exp(z)
    proba = e / e.sum()
    return CaseView(scores=row[0], logits=logits, proba=proba, predicted=int(proba.argmax()))


def top_concepts(values: np.ndarray, k: int, nonzero_only: bool = False) -> np.ndarray:
    """Indices of the ``k`` largest |values| (largest first), for charts of big banks."""
    v = np.abs(np.asarray(values, np.float64))
    idx = np.flatnonzero(v > 0) if nonzero_only else np.arange(v.size)
    if idx.size > k:
        idx = idx[np.argpartition(-v[idx], k - 1)[:k]]
    return idx[np.argsort(-v[idx], kind="stable")]


def export_case(
    model: ConceptBottleneckModel,
    model_dir: str,
    case: dict[str, Any],
    original: np.ndarray,
    history: list[CaseEdit],
    edits: dict[int, float],
    top: int = 5,
    strategy: str | None = None,
) -> dict[str, Any]:
    """A JSON-able record of an edited case: what was changed and what it did.

    ``strategy`` is the selection strategy that suggested the concepts to check.
    """
    before = view_case(model, original)
    after = view_case(model, edited_scores(original, edits))

    def ranked(view: CaseView) -> list[dict[str, Any]]:
        order = np.argsort(-view.proba)[:top]
        return [{"class": model.class_names[k], "probability": float(view.proba[k])} for k in order]

    return {
        "kind": "cbm_edited_case",
        "cbm_version": cbm.__version__,
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model_dir": model_dir,
        "concept_bank": model.bank.name,
        "case": case,
        "prediction_before": {
            "class": model.class_names[before.predicted],
            "top": ranked(before),
        },
        "prediction_after": {"class": model.class_names[after.predicted], "top": ranked(after)},
        "edits": [
            {"concept": model.bank.concepts[j], "index": j, "value": float(v)}
            for j, v in edits.items()
        ],
        "history": [asdict(h) for h in history],
        "suggestion_strategy": strategy,
    }


# -- global edits of the head ---------------------------------------------------------------
def remove_concepts(model: ConceptBottleneckModel, indices: list[int]) -> ConceptBottleneckModel:
    """A copy of ``model`` whose head ignores the given concepts (their weights set to 0).

    The concept stays in the bank (its scores are still computed and shown); only the
    head stops using it. The edit is recorded in ``training["global_edits"]``.
    """
    k = len(model.bank)
    bad = [i for i in indices if not 0 <= int(i) < k]
    if bad:
        raise ValidationError(f"concept indices must lie in 0..{k - 1}, got {bad}")
    if not indices:
        raise ConfigurationError("choose at least one concept to remove")
    edited = copy.deepcopy(model)
    coef = np.array(edited.head.coef_, dtype=np.float64, copy=True)
    coef[:, list(indices)] = 0.0
    edited.head.coef_ = coef
    edited.head.nec_ = edited.nec
    # The parent's regularisation path does not describe the edited head.
    if hasattr(edited.head, "path_"):
        del edited.head.path_
    edits = list(edited.training.get("global_edits") or [])
    edits.append({"removed_concepts": [model.bank.concepts[i] for i in indices]})
    edited.training = {**edited.training, "global_edits": edits}
    return edited


@dataclass(frozen=True)
class GlobalEditEffect:
    """Accuracy and NEC of a model before and after a global edit on the same split."""

    accuracy_before: float
    accuracy_after: float
    nec_before: float
    nec_after: float
    changed_predictions: int


def global_edit_effect(
    before: ConceptBottleneckModel,
    after: ConceptBottleneckModel,
    scores: np.ndarray,
    labels: np.ndarray,
) -> GlobalEditEffect:
    """Compare two heads on the same concept scores (one matrix product each)."""
    p0 = before.logits_from_scores(scores).argmax(axis=1)
    p1 = after.logits_from_scores(scores).argmax(axis=1)
    y = np.asarray(labels)
    return GlobalEditEffect(
        accuracy_before=float((p0 == y).mean()),
        accuracy_after=float((p1 == y).mean()),
        nec_before=before.nec,
        nec_after=after.nec,
        changed_predictions=int((p0 != p1).sum()),
    )


def save_edited_model(
    edited: ConceptBottleneckModel,
    parent_dir: str | Path,
    new_dir: str | Path,
    effect: GlobalEditEffect | None = None,
) -> Path:
    """Save a globally edited model as a new directory, never over an existing one.

    The parent's stored evaluation split (if any) is copied along, and the metrics are
    updated to the edited head's accuracy on that split, with the parent's path kept.
    """
    parent_dir, new_dir = Path(parent_dir), Path(new_dir)
    if new_dir.exists() and any(new_dir.iterdir()):
        raise ConfigurationError(
            f"{new_dir} already exists and is not empty; choose a new folder name "
            "(the workbench never overwrites a saved model)"
        )
    if new_dir.resolve() == parent_dir.resolve():
        raise ConfigurationError("save the edited model to a different folder than its parent")
    out = copy.copy(edited)
    metrics = dict(edited.metrics)
    metrics["edited_from"] = str(parent_dir)
    if effect is not None:
        metrics["test_accuracy"] = effect.accuracy_after
        metrics["accuracy_before_edit"] = effect.accuracy_before
    metrics["nec"] = edited.nec
    out.metrics = metrics
    out.save(new_dir)
    stored = parent_dir / EVALUATION_FILE
    if stored.is_file():
        shutil.copyfile(stored, new_dir / EVALUATION_FILE)
    return new_dir
