import json

import pytest

from cbm.concepts import ConceptBank
from cbm.concepts.shapes_bank import shapes_bank
from cbm.exceptions import ArtefactError, ValidationError


def test_round_trip(tmp_path):
    bank = ConceptBank(
        "b",
        ("red", "round shape"),
        ("a red thing", "a round thing"),
        groups=("colour", "shape"),
        provenance={"source": "test"},
    )
    bank.save(tmp_path / "b.json")
    assert ConceptBank.load(tmp_path / "b.json") == bank


@pytest.mark.parametrize(
    ("concepts", "message"),
    [
        ((), "empty"),
        (("red", "  "), "blank"),
        (("Red", "red "), "duplicates"),
        (("red", "x" * 201), "characters long"),
    ],
)
def test_bad_banks_are_refused_with_reason(concepts, message):
    with pytest.raises(ValidationError, match=message):
        ConceptBank("bad", concepts)


def test_prompt_count_must_match():
    with pytest.raises(ValidationError, match="2 concepts but 1 prompts"):
        ConceptBank("bad", ("a", "b"), ("only one",))


def test_shipped_shapes_bank_is_the_generated_one():
    assert ConceptBank.load("shapes") == shapes_bank()


def test_unknown_shipped_bank_lists_the_known_ones():
    with pytest.raises(ArtefactError, match="shapes"):
        ConceptBank.load("no-such-bank")


def test_non_utf8_and_wrong_kind_files_are_refused(tmp_path):
    (tmp_path / "latin.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ArtefactError, match="UTF-8"):
        ConceptBank.load(tmp_path / "latin.json")
    (tmp_path / "model.json").write_text(json.dumps({"kind": "model", "schema_version": 1}))
    with pytest.raises(ArtefactError, match="kind 'concept_bank'"):
        ConceptBank.load(tmp_path / "model.json")


def test_subset_records_provenance():
    sub = shapes_bank().subset([0, 4])
    assert sub.concepts == ("circle", "red")
    assert sub.provenance["subset_of"] == "shapes"
