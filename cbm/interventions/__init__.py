"""Test-time interventions: "fix this image" by editing a copy of its concept scores.

The one place an application imports interventions from:

* :class:`Edit`, :func:`apply_edits`, :func:`edit_prediction` -- set a concept
  present/absent, to a value, scale or remove it, and see the prediction move;
* :class:`InterventionValues`, :class:`ConceptCalibration` -- what "present"/"absent"
  mean for unbounded CLIP scores, and the concept probabilities the criteria use;
* :class:`Intervener` -- selection strategies (``rand``, ``ucp``, ``lcp``, ``cctp``,
  ``ectp``, ``eudtp``; Shin et al., ICML 2023) per image or with a batch budget, at
  concept or group granularity;
* :func:`intervention_curves` -- task error against the number of interventions,
  per image or with the budget shared by the batch;
* :func:`edit_concepts` -- "fix the model": a global edit that removes or down-weights
  concepts in every class (optionally re-fitting the rest) and returns a new model.

Models are never modified.
"""

from cbm.heads.edits import edit_concepts
from cbm.interventions.curves import (
    InterventionCurve,
    batch_intervention_curve,
    curve_auc,
    curves_table,
    intervention_curve,
    intervention_curves,
    steps_to_error,
)
from cbm.interventions.edits import (
    OPERATIONS,
    Edit,
    EditResult,
    apply_edits,
    concept_index,
    edit_prediction,
    group_members,
    intervene,
)
from cbm.interventions.groups import GROUP_OUTCOMES
from cbm.interventions.procedure import Intervener, Selection
from cbm.interventions.strategies import STRATEGIES, Units
from cbm.interventions.values import ConceptCalibration, InterventionValues

__all__ = [
    "GROUP_OUTCOMES",
    "OPERATIONS",
    "STRATEGIES",
    "ConceptCalibration",
    "Edit",
    "EditResult",
    "Intervener",
    "InterventionCurve",
    "InterventionValues",
    "Selection",
    "Units",
    "apply_edits",
    "batch_intervention_curve",
    "concept_index",
    "curve_auc",
    "curves_table",
    "edit_concepts",
    "edit_prediction",
    "group_members",
    "intervene",
    "intervention_curve",
    "intervention_curves",
    "steps_to_error",
]
