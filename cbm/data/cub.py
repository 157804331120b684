"""CUB-200-2011 from its standard folder, with per-image attributes as concepts.

Expected layout (as unpacked from the official ``CUB_200_2011.tgz``)::

    CUB_200_2011/
        images.txt                  <image_id> <relative path>
        image_class_labels.txt      <image_id> <class_id>
        train_test_split.txt        <image_id> <1 = train, 0 = test>
        classes.txt                 <class_id> <class name>
        images/<class>/<file>.jpg
        attributes/image_attribute_labels.txt
                                    <image_id> <attribute_id> <is_present> <certainty> <time>
    attributes.txt                  <attribute_id> <name>   (beside CUB_200_2011/, or in
                                                             CUB_200_2011/attributes/)

The annotators' per-image attribute labels become the ground-truth concept matrix
(``ImageDataset.concepts``, 312 columns named like ``has_bill_shape::hooked``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbm.data.images import ImageDataset
from cbm.exceptions import ConfigurationError, ValidationError


def _id_table(path: Path) -> dict[int, str]:
    if not path.is_file():
        raise ConfigurationError(
            f"CUB file {path} is missing; pass the CUB_200_2011 folder of the official release"
        )
    table: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        try:
            table[int(key)] = value.strip()
        except ValueError as err:
            raise ValidationError(f"{path}:{n}: expected '<id> <value>', got {line!r}") from err
    return table


def _attribute_names(root: Path) -> dict[int, str]:
    for candidate in (root / "attributes.txt", root / "attributes" / "attributes.txt"):
        if candidate.is_file():
            return _id_table(candidate)
    return _id_table(root.parent / "attributes.txt")


def load_cub(root: str | Path, split: str | None = None, attributes: bool = True) -> ImageDataset:
    """The CUB-200-2011 images with class labels and (optionally) attribute concepts.

    Parameters
    ----------
    root
        The ``CUB_200_2011`` folder.
    split
        ``"train"``, ``"test"`` or ``None`` for both (the dataset's ``splits`` say which).
    attributes
        Read the 312 per-image attribute labels as ``concepts``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigurationError(f"CUB folder {root} does not exist")
    images = _id_table(root / "images.txt")
    labels = _id_table(root / "image_class_labels.txt")
    is_train = _id_table(root / "train_test_split.txt")
    classes = _id_table(root / "classes.txt")
    ids = sorted(images)
    missing = [i for i in ids if i not in labels or i not in is_train]
    if missing:
        raise ValidationError(
            f"{root}: images {missing[:5]} lack a class label or a train/test flag"
        )
    class_ids = sorted(classes)
    class_index = {c: k for k, c in enumerate(class_ids)}
    names = tuple(classes[c].split(".", 1)[-1].replace("_", " ") for c in class_ids)
    y = np.asarray([class_index[int(labels[i])] for i in ids], dtype=np.int64)
    splits = tuple("train" if is_train[i] == "1" else "test" for i in ids)
    concepts = None
    concept_names: tuple[str, ...] = ()
    if attributes:
        attr_names = _attribute_names(root)
        attr_ids = sorted(attr_names)
        concept_names = tuple(attr_names[a] for a in attr_ids)
        concepts = _image_attributes(root, ids, attr_ids)
    ds = ImageDataset(
        paths=[root / "images" / images[i] for i in ids],
        labels=y,
        classes=names,
        splits=splits,
        concepts=concepts,
        concept_names=concept_names,
        name="cub200",
    )
    return ds.split(split) if split is not None else ds


def _image_attributes(root: Path, image_ids: list[int], attr_ids: list[int]) -> np.ndarray:
    path = root / "attributes" / "image_attribute_labels.txt"
    if not path.is_file():
        raise ConfigurationError(
            f"{path} is missing; pass attributes=False to load CUB without concepts"
        )
    # Some lines of the official file carry extra fields; only the first three matter.
    table = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2), ndmin=2)
    row_of = np.full(max(image_ids) + 1, -1, np.int64)
    row_of[np.asarray(image_ids)] = np.arange(len(image_ids))
    col_of = np.full(max(attr_ids) + 1, -1, np.int64)
    col_of[np.asarray(attr_ids)] = np.arange(len(attr_ids))
    valid = (table[:, 0] < row_of.size) & (table[:, 1] < col_of.size)
    table = table[valid]
    rows, cols = row_of[table[:, 0]], col_of[table[:, 1]]
    keep = (rows >= 0) & (cols >= 0)
    out = np.zeros((len(image_ids), len(attr_ids)), np.uint8)
    out[rows[keep], cols[keep]] = (table[keep, 2] > 0).astype(np.uint8)
    return out
