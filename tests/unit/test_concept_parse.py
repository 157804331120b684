"""Parsing real language-model answers into concept names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cbm.concepts.parse import clean_concept, concept_key, dedupe, parse_concepts

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "label-free-cbm"
RAW = RAW if RAW.is_dir() else Path("/work/shared/reference/label-free-cbm")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            "1. Wings\n2. **Jet engines** - used for thrust\n3) Tail fin.\n4. wings",
            ["wings", "jet engines", "tail fin"],
        ),
        (
            "Here are some features:\n- a long tail\n- fur\n- Whiskers!",
            ["a long tail", "fur", "whiskers"],
        ),
        ('```json\n["wings", "tail", "Wings"]\n```', ["wings", "tail"]),
        (
            'Sure.\n```\n{"features": ["beak", "feathers"]}\n```\nHope this helps!',
            ["beak", "feathers"],
        ),
        ('[{"name": "beak"}, {"name": "talons"}]', ["beak", "talons"]),
        ("A cat has: fur, whiskers, and a long tail.", ["fur", "whiskers", "a long tail"]),
        ("a large, metal body", ["a large, metal body"]),
        (
            "* USB port\n* the screen\n* screens\n\u2022 leaves\n\u2022 leaf",
            ["USB port", "the screen", "leaves"],
        ),
        ("", []),
        ("???\n...", []),
    ],
)
def test_parses_the_shapes_models_answer_in(answer: str, expected: list[str]) -> None:
    assert parse_concepts(answer).concepts == expected


def test_reports_what_it_dropped_and_why() -> None:
    result = parse_concepts("- wings\n- Wings.\n- " + "x" * 120)
    assert result.concepts == ["wings"]
    assert [why for _, why in result.dropped] == ["duplicate", "empty or longer than 80 characters"]


def test_sentences_keep_their_explanations() -> None:
    answer = "1. It has a long neck: useful for reaching leaves.\n2. Its coat has brown patches."
    assert parse_concepts(answer, kind="sentences").concepts == [
        "it has a long neck: useful for reaching leaves",
        "its coat has brown patches",
    ]


def test_duplicate_key_ignores_case_articles_punctuation_and_plural() -> None:
    assert concept_key("The Wings.") == concept_key("a wing") == "wing"
    assert concept_key("glasses") != concept_key("glass es")
    assert dedupe(["Berries", "a berry", "box", "boxes", "glass"]) == ["Berries", "box", "glass"]


def _raw_files() -> list[Path]:
    files = sorted((RAW / "gpt3_raw").glob("*.json")) if RAW.is_dir() else []
    if not files:
        pytest.skip("../shared/reference/label-free-cbm/gpt3_raw is absent")
    return files


@pytest.mark.parametrize("style", ["numbered", "bulleted", "json", "fenced"])
def test_real_gpt3_answers_survive_every_answer_style(style: str) -> None:
    """Render each real GPT-3 answer as a model would, parse it back, get the same list."""
    for path in _raw_files():
        for cls, items in json.loads(path.read_text()).items():
            expected = dedupe(c for c in (clean_concept(i) for i in items) if c)
            if style == "numbered":
                text = f"Features of {cls}:\n" + "\n".join(
                    f"{i + 1}. {x}" for i, x in enumerate(items)
                )
            elif style == "bulleted":
                text = "\n".join(f"- {x}." for x in items)
            elif style == "json":
                text = json.dumps({"concepts": items})
            else:
                text = f"Here you go:\n```json\n{json.dumps(items)}\n```"
            assert parse_concepts(text).concepts == expected, (path.name, cls, style)


def test_real_gpt3_items_are_mostly_unchanged_by_cleaning() -> None:
    changed = total = 0
    for path in _raw_files():
        for items in json.loads(path.read_text()).values():
            for item in items:
                total += 1
                cleaned = clean_concept(item)
                assert cleaned is not None, item
                changed += cleaned != item.lower()
    # only parenthetical asides such as "armrests (optional)" are cut
    assert total > 3000 and changed < 10


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_cleaning_is_idempotent(item: str) -> None:
    once = clean_concept(item)
    if once is not None:
        assert clean_concept(once) == once


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij ,.-*:1()", min_size=1, max_size=25), max_size=8))
def test_parsing_a_parsed_list_again_changes_nothing(items: list[str]) -> None:
    first = parse_concepts("\n".join(f"- {i}" for i in items)).concepts
    again = parse_concepts("\n".join(f"- {c}" for c in first)).concepts
    assert again == first
