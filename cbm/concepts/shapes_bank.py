"""The shapes-world concept bank, written from the world's own vocabulary."""

from __future__ import annotations

from cbm.concepts.bank import ConceptBank
from cbm.data.captions import concept_prompt
from cbm.data.shapes import CONCEPT_DIMENSION, CONCEPTS


def shapes_bank() -> ConceptBank:
    """All 20 shapes-world concepts, prompted with their one-concept captions.

    ``concept_banks/shapes.json`` is this bank, saved; a test keeps the two equal.
    """
    return ConceptBank(
        name="shapes",
        concepts=CONCEPTS,
        prompts=tuple(concept_prompt(c) for c in CONCEPTS),
        groups=CONCEPT_DIMENSION,
        provenance={
            "source": "hand-written",
            "method": "one concept per value of each shapes-world dimension; prompts are the "
            "one-concept captions the tiny CLIP was trained with (cbm.data.captions)",
            "generator": "cbm.concepts.shapes_bank.shapes_bank",
        },
        version="1",
    )
