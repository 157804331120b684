"""Concept banks: names, prompt texts and provenance."""

from cbm.concepts.bank import ConceptBank

__all__ = ["ConceptBank"]
