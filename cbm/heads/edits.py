"""Global model edits (Post-hoc CBM): remove or down-weight concepts for every class.

An edit never touches the model it is given: it returns a new
:class:`~cbm.model.ConceptBottleneckModel` whose head weights for the chosen concepts
are zeroed (removed) or scaled, optionally re-fitting the head on the remaining
concepts so the others can take over the removed ones' share.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import numpy as np
from sklearn.base import clone

from cbm.exceptions import ValidationError
from cbm.heads.sparse import nec
from cbm.model import ConceptBottleneckModel


def resolve_concepts(model: ConceptBottleneckModel, items: Iterable[str | int]) -> np.ndarray:
    """Indices of concepts named, numbered, or given as a group name (``"group:colour"``)."""
    bank = model.bank
    lookup = {name.casefold(): i for i, name in enumerate(bank.concepts)}
    out: list[int] = []
    for item in items:
        if isinstance(item, (int, np.integer)):
            if not 0 <= int(item) < len(bank):
                raise ValidationError(f"concept index {item} is outside 0..{len(bank) - 1}")
            out.append(int(item))
        elif item.startswith("group:"):
            group = item[len("group:") :]
            idx = [i for i, g in enumerate(bank.groups) if g == group]
            if not idx:
                known = sorted(set(bank.groups)) or ["(the bank has no groups)"]
                raise ValidationError(f"no concept group {group!r}; groups: {', '.join(known)}")
            out.extend(idx)
        elif item.casefold() in lookup:
            out.append(lookup[item.casefold()])
        else:
            raise ValidationError(
                f"concept {item!r} is not in bank {bank.name!r}; give a concept name, an index "
                "or 'group:<name>'"
            )
    return np.unique(np.asarray(out, dtype=int))


def edit_concepts(
    model: ConceptBottleneckModel,
    remove: Iterable[str | int] = (),
    scale: Mapping[str | int, float] | None = None,
    refit: tuple[np.ndarray, np.ndarray] | None = None,
) -> ConceptBottleneckModel:
    """A new model with concepts removed or down-weighted across all classes.

    Parameters
    ----------
    model
        A fitted model; it is not modified.
    remove
        Concepts (names, indices or ``"group:<name>"``) whose weights become zero.
    scale
        Concept -> factor for its weights in every class (e.g. ``0.5`` halves it).
    refit
        ``(embeddings, labels)``: re-fit the head with the same settings on the kept
        concepts only (the removed ones stay at zero); scaling is applied afterwards.

    Returns
    -------
    ConceptBottleneckModel
        The edited copy; ``training["edits"]`` records what was done.
    """
    model._check_fitted()
    removed = resolve_concepts(model, remove)
    scale = dict(scale or {})
    factors = {int(j): float(f) for key, f in scale.items() for j in resolve_concepts(model, [key])}
    for j, f in factors.items():
        if not np.isfinite(f):
            raise ValidationError(f"scale for concept {model.bank.concepts[j]!r} is {f}")
    new = copy.deepcopy(model)
    head = new.head
    if refit is not None:
        embeddings, labels = refit
        kept = np.setdiff1d(np.arange(len(model.bank)), removed)
        if kept.size == 0:
            raise ValidationError("cannot refit after removing every concept")
        scores = model.concept_scores(embeddings)[:, kept]
        fitted = clone(model.head).fit(scores, labels)
        head.coef_ = np.zeros((fitted.coef_.shape[0], len(model.bank)))
        head.coef_[:, kept] = fitted.coef_
        head.intercept_ = fitted.intercept_.copy()
        head.classes_ = fitted.classes_.copy()
        for attr in ("C_", "lambda_", "selection_", "path_"):
            if hasattr(fitted, attr):
                setattr(head, attr, copy.deepcopy(getattr(fitted, attr)))
    else:
        head.coef_ = head.coef_.copy()
        # The parent's regularisation path does not describe the edited head.
        if hasattr(head, "path_"):
            del head.path_
    head.coef_[:, removed] = 0.0
    for j, f in factors.items():
        head.coef_[:, j] *= f
    head.nec_ = nec(head.coef_)
    new.training = {
        **new.training,
        "edits": {
            "removed": [model.bank.concepts[j] for j in removed],
            "scaled": {model.bank.concepts[j]: f for j, f in factors.items()},
            "refit": refit is not None,
        },
    }
    return new
