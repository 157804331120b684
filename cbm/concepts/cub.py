"""The CUB-200-2011 attribute bank, read from the user's own copy of the dataset.

CUB's 312 annotated attributes (``has_bill_shape::hooked``, ...) are the dataset's, under
its terms, so cbm does not ship them: :func:`cub_attribute_bank` reads ``attributes.txt``
at load time. :func:`cub_class_attributes` reads the class-level table (percentage of
each class's images showing each attribute) for concept ground truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbm.concepts.bank import ConceptBank
from cbm.exceptions import ArtefactError

N_ATTRIBUTES = 312


def _find(root: str | Path, name: str) -> Path:
    p = Path(root)
    if p.is_file():
        return p
    for cand in (p / name, p / "attributes" / name, p.parent / name, p / "CUB_200_2011" / name):
        if cand.is_file():
            return cand
    raise ArtefactError(
        f"no {name} under {p}: give the CUB_200_2011 folder (or the file itself); "
        f"CUB keeps it at CUB_200_2011/attributes/{name} or next to the CUB_200_2011 folder"
    )


def _prompt(group: str, value: str) -> str:
    part, _, aspect = group.rpartition(" ")
    if aspect in ("color", "pattern", "shape") and part:
        return f"a photo of a bird with a {value} {part} {aspect}"
    return f"a photo of a bird whose {group} is {value}"


def cub_attribute_bank(root: str | Path) -> ConceptBank:
    """The 312 CUB attributes as a bank, grouped by attribute (bill shape, wing color...).

    Parameters
    ----------
    root
        The ``CUB_200_2011`` folder, its parent, or the ``attributes.txt`` file
        (lines ``"1 has_bill_shape::curved_(up_or_down)"``).
    """
    path = _find(root, "attributes.txt")
    names: list[str] = []
    prompts: list[str] = []
    groups: list[str] = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        idx, _, attr = line.strip().partition(" ")
        head, sep, value = attr.partition("::")
        if not idx.isdigit() or not sep or int(idx) != len(names) + 1:
            raise ArtefactError(
                f"{path}:{no}: expected '<index> has_<part>::<value>' numbered from 1, got {line!r}"
            )
        group = head.removeprefix("has_").replace("_", " ")
        value = value.replace("_", " ")
        names.append(f"{group}: {value}")
        prompts.append(_prompt(group, value))
        groups.append(group)
    if len(names) != N_ATTRIBUTES:
        raise ArtefactError(f"{path} lists {len(names)} attributes; CUB-200-2011 has 312")
    return ConceptBank(
        name="cub-attributes",
        concepts=tuple(names),
        prompts=tuple(prompts),
        groups=tuple(groups),
        provenance={
            "source": "dataset attributes",
            "dataset": "CUB-200-2011",
            "file": str(path),
            "method": "one concept per annotated attribute; prompt written from the "
            "attribute's part and value by cbm.concepts.cub",
        },
    )


def cub_class_attributes(root: str | Path) -> np.ndarray:
    """``(200, 312)`` fraction (0-1) of each class's images annotated with each attribute."""
    path = _find(root, "class_attribute_labels_continuous.txt")
    table = np.loadtxt(path, dtype=np.float64)
    if table.shape != (200, N_ATTRIBUTES):
        raise ArtefactError(f"{path} has shape {table.shape}; expected (200, {N_ATTRIBUTES})")
    return table / 100.0
