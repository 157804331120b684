"""Non-LLM concept sources and the shipped banks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cbm.concepts import ConceptBank
from cbm.concepts.cub import cub_attribute_bank, cub_class_attributes
from cbm.concepts.parse import concept_key
from cbm.concepts.shipped import HANDWRITTEN, SHIPPED, build
from cbm.concepts.sources import WordNet, find_wordnet, parse_text_bank, wordnet_bank
from cbm.exceptions import ArtefactError, ValidationError

CUB = Path("/work/shared/reference/cub")


def test_hand_written_format_with_groups_prompts_and_class_blocks() -> None:
    bank = parse_text_bank(
        "name: birds\n# a comment\n[colour]\nred crown\nwing bars | a bird with wing bars\n"
        "@ cardinal\nfeature: red crown; black face mask  # same as above: merged\n"
        "@ blue jay\nfeature: crest; Red Crown\n"
    )
    assert bank.name == "birds"
    assert bank.concepts == ("red crown", "wing bars", "black face mask", "crest")
    assert bank.prompts[1] == "a bird with wing bars"
    assert bank.groups == ("colour", "colour", "feature", "feature")
    assert bank.provenance["concept_classes"]["red crown"] == ["cardinal", "blue jay"]


def test_concept_bank_load_reads_a_hand_written_txt_file(tmp_path: Path) -> None:
    # docs/concepts.md: a hand-written .txt bank loads wherever a bank file is accepted
    path = tmp_path / "my-birds.txt"
    path.write_text("name: my-birds\n[colour]\nred crown\nwing bars | a bird with wing bars\n")
    bank = ConceptBank.load(path)
    assert bank.name == "my-birds"
    assert bank.concepts == ("red crown", "wing bars")
    assert bank.prompts[1] == "a bird with wing bars"
    with pytest.raises(ArtefactError, match="does not exist"):
        ConceptBank.load(tmp_path / "missing.txt")


def test_hand_written_format_errors_name_the_line() -> None:
    with pytest.raises(ValidationError, match="<text>:2: inside a class block"):
        parse_text_bank("@ cat\nwhiskers\n")
    with pytest.raises(ValidationError, match="no concepts"):
        parse_text_bank("# nothing\n")


@pytest.mark.parametrize("name", [*SHIPPED, "shapes"])
def test_every_shipped_bank_loads_validates_and_has_no_duplicates(name: str) -> None:
    bank = ConceptBank.load(name)
    keys = [concept_key(c) for c in bank.concepts]
    assert len(set(keys)) == len(keys), "duplicates up to case, article or plural"
    assert bank.provenance.get("source") in {"hand-written", "wordnet"}
    path = Path(__file__).resolve().parents[2] / "concept_banks" / f"{name}.json"
    assert path.stat().st_size < 300_000


@pytest.mark.parametrize("name", [*HANDWRITTEN, "cub200"])
def test_shipped_json_equals_its_source(name: str) -> None:
    shipped = ConceptBank.load(name).to_dict()
    rebuilt = build(name).to_dict()
    for d in (shipped, rebuilt):
        d.pop("cbm_version")
    assert shipped == rebuilt


def test_handwritten_banks_cover_every_class() -> None:
    cifar = ConceptBank.load("cifar100").provenance["concept_classes"]
    classes = {c for cls in cifar.values() for c in cls}
    assert len(classes) == 100
    fm = ConceptBank.load("fashion-mnist").provenance["concept_classes"]
    assert len({c for cls in fm.values() for c in cls}) == 10


def _wordnet() -> WordNet:
    try:
        find_wordnet()
    except ArtefactError:
        pytest.skip("WordNet data files are not installed (apt install wordnet-base)")
    return WordNet()


def test_wordnet_gives_superclasses_and_parts_of_the_visual_sense() -> None:
    wn = _wordnet()
    bank = wordnet_bank(["tiger", "airplane", "no-such-thing-xyz"], wordnet=wn)
    classes = bank.provenance["concept_classes"]
    assert classes["big cat"] == ["tiger"]  # the animal, not the first sense (a person)
    assert any(g == "part" for g in bank.groups)
    assert bank.provenance["unknown_classes"] == ["no-such-thing-xyz"]


@pytest.mark.slow
def test_shipped_imagenet_bank_equals_its_wordnet_source() -> None:
    _wordnet()
    shipped = ConceptBank.load("imagenet")
    assert shipped.concepts == build("imagenet").concepts
    assert len(shipped.provenance["unknown_classes"]) < 30


def _write_cub_attributes(folder: Path) -> Path:
    names = json.loads((CUB / "attributes.json").read_text())["attribute_names_312"]
    (folder / "attributes").mkdir(parents=True)
    path = folder / "attributes" / "attributes.txt"
    path.write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    return folder


def test_cub_attribute_bank_from_the_users_copy(tmp_path: Path) -> None:
    if not (CUB / "attributes.json").is_file():
        pytest.skip("../shared/reference/cub is absent")
    root = _write_cub_attributes(tmp_path / "CUB_200_2011")
    bank = cub_attribute_bank(root)
    assert len(bank) == 312 and bank.concepts[0] == "bill shape: curved (up or down)"
    assert bank.prompts[9] == "a photo of a bird with a blue wing color"
    assert len(set(bank.groups)) == 28
    table = cub_class_attributes(CUB / "class_attribute_labels_continuous.txt")
    assert table.shape == (200, 312) and 0 <= table.min() and table.max() <= 1.0
    assert np.allclose(table.sum(1) > 0, True)


def test_cub_attribute_errors_say_where_the_file_should_be(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="CUB_200_2011/attributes/attributes.txt"):
        cub_attribute_bank(tmp_path)
    bad = tmp_path / "attributes.txt"
    bad.write_text("1 has_bill_shape::dagger\n3 has_wing_color::blue\n")
    with pytest.raises(ArtefactError, match="numbered from 1"):
        cub_attribute_bank(bad)
