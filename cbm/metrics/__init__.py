"""Pure metric functions: arrays in, numbers or DataFrames out (no plotting, no I/O)."""

from cbm.metrics.concepts import (
    class_concept_frequency,
    concept_average_precision,
    concept_existence,
    concept_health,
    importance_alignment,
)
from cbm.metrics.core import accuracy, concept_auroc, linear_probe_accuracy
from cbm.metrics.information import (
    MIEstimate,
    information_audit,
    mutual_information_lower_bound,
    paired_ratio,
)
from cbm.metrics.leakage import binarise, leakage_check
from cbm.metrics.localisation import (
    concept_activation_maps,
    mask_iou,
    pointing_game,
    upsample_maps,
)
from cbm.metrics.task import (
    accuracy_at_nec,
    accuracy_nec_curve,
    balanced_accuracy,
    effective_concepts,
    expected_calibration_error,
    reliability_table,
)

__all__ = [
    "MIEstimate",
    "accuracy",
    "accuracy_at_nec",
    "accuracy_nec_curve",
    "balanced_accuracy",
    "binarise",
    "class_concept_frequency",
    "concept_activation_maps",
    "concept_auroc",
    "concept_average_precision",
    "concept_existence",
    "concept_health",
    "effective_concepts",
    "expected_calibration_error",
    "importance_alignment",
    "information_audit",
    "leakage_check",
    "linear_probe_accuracy",
    "mask_iou",
    "mutual_information_lower_bound",
    "paired_ratio",
    "pointing_game",
    "reliability_table",
    "upsample_maps",
]
