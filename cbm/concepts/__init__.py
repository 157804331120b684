"""Concept banks: names, prompt texts and provenance; generation, filtering, selection."""

from cbm.concepts.bank import ConceptBank
from cbm.concepts.cub import cub_attribute_bank, cub_class_attributes
from cbm.concepts.filters import (
    MaxLength,
    NearDuplicates,
    NotVisible,
    TooSimilarToClass,
    apply_filters,
    filter_bank,
)
from cbm.concepts.generate import GenerationResult, generate_concepts
from cbm.concepts.llm import LLMClient, LLMError, OpenAIChatClient, TransformersClient
from cbm.concepts.parse import parse_concepts
from cbm.concepts.select import discriminability, select_bank
from cbm.concepts.sources import load_text_bank, parse_text_bank, wordnet_bank

__all__ = [
    "ConceptBank",
    "GenerationResult",
    "LLMClient",
    "LLMError",
    "MaxLength",
    "NearDuplicates",
    "NotVisible",
    "OpenAIChatClient",
    "TooSimilarToClass",
    "TransformersClient",
    "apply_filters",
    "cub_attribute_bank",
    "cub_class_attributes",
    "discriminability",
    "filter_bank",
    "generate_concepts",
    "load_text_bank",
    "parse_concepts",
    "parse_text_bank",
    "select_bank",
    "wordnet_bank",
]
