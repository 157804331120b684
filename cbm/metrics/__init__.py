"""Pure metric functions: arrays in, numbers out."""

from cbm.metrics.core import accuracy, concept_auroc, linear_probe_accuracy

__all__ = ["accuracy", "concept_auroc", "linear_probe_accuracy"]
