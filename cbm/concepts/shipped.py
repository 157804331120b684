"""How each shipped bank in ``concept_banks/`` is built (a test keeps the JSON files equal).

- ``cifar10``, ``cifar100``, ``fashion-mnist``: hand-written by us, in the text format
  of :mod:`cbm.concepts.sources` (``concept_banks/sources/*.txt``).
- ``cub200``: a bird vocabulary we composed from body parts and the colours, patterns and
  shapes field guides use (no CUB file involved; the CUB attribute bank itself is read
  from the user's copy by :func:`cbm.concepts.cub.cub_attribute_bank`).
- ``imagenet``: WordNet 3.0 hypernyms and part meronyms of the 1000 ImageNet-1k class
  names (class names as listed by torchvision).

Rebuild with ``python -m cbm.concepts.shipped`` (ImageNet needs ``wordnet-base``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cbm.concepts.bank import ConceptBank, builtin_dir
from cbm.concepts.sources import load_text_bank, wordnet_bank

HANDWRITTEN = {"cifar10": "cifar10", "cifar100": "cifar100", "fashion-mnist": "fashion_mnist"}
SHIPPED = (*HANDWRITTEN, "cub200", "imagenet")

_BIRD_PARTS = ("crown", "forehead", "nape", "throat", "breast", "belly", "back", "wings", "tail")
_BIRD_COLOURS = (
    "black",
    "white",
    "grey",
    "brown",
    "buff",
    "rufous",
    "red",
    "orange",
    "yellow",
    "olive",
    "green",
    "blue",
    "iridescent",
)
_BIRD_EXTRA = {
    "bill": (
        "short conical bill",
        "long thin bill",
        "hooked bill",
        "dagger-shaped bill",
        "flat broad bill",
        "needle-like bill",
        "orange bill",
        "yellow bill",
        "black bill",
        "large colourful bill",
    ),
    "head": (
        "crest on the head",
        "white eye ring",
        "pale eyebrow stripe",
        "dark eye stripe",
        "black face mask",
        "red eye",
        "yellow eye",
        "moustache stripe",
        "striped crown",
    ),
    "pattern": (
        "white wing bars",
        "streaked breast",
        "spotted breast",
        "barred underparts",
        "scaly back pattern",
        "solid-coloured plumage",
        "contrasting black and white plumage",
        "bright yellow rump",
        "white outer tail feathers",
        "forked tail",
        "long tail",
        "fan-shaped tail",
    ),
    "body": (
        "small songbird size",
        "large long-winged seabird",
        "long neck",
        "long legs",
        "webbed feet",
        "pointed wings",
        "rounded wings",
        "plump round body",
        "slender body",
    ),
    "context": (
        "perched on a branch",
        "swimming on water",
        "flying over the sea",
        "standing on a shore",
        "clinging to a tree trunk",
        "among reeds",
        "on the ground in grass",
        "at a bird feeder",
    ),
}


def cub200_bank() -> ConceptBank:
    """Part-colour concepts plus bill, head, pattern, body and setting concepts for birds."""
    names, prompts, groups = [], [], []
    for part in _BIRD_PARTS:
        for colour in _BIRD_COLOURS:
            names.append(f"{colour} {part}")
            prompts.append(f"a photo of a bird with a {colour} {part}")
            groups.append(f"{part} colour")
    for group, items in _BIRD_EXTRA.items():
        for item in items:
            names.append(item)
            prefix = "a photo of a bird " if group == "context" else "a photo of a bird with "
            prompts.append(prefix + item)
            groups.append(group)
    return ConceptBank(
        name="cub200",
        concepts=tuple(names),
        prompts=tuple(prompts),
        groups=tuple(groups),
        provenance={
            "source": "hand-written",
            "author": "cbm authors, composed for this project",
            "method": "every colour of every body part, plus bill shapes, head marks, "
            "plumage patterns, body shapes and settings; generator "
            "cbm.concepts.shipped.cub200_bank",
        },
    )


def imagenet_bank() -> ConceptBank:
    """WordNet superclasses and parts of the ImageNet-1k classes."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    classes = list(dict.fromkeys(_IMAGENET_CATEGORIES))  # 'crane' and 'maillot' repeat
    bank = wordnet_bank(classes, name="imagenet", hypernym_depth=2)
    prov = {**bank.provenance, "classes": "torchvision ImageNet-1k category names"}
    return dataclasses.replace(bank, provenance=prov)


def build(name: str) -> ConceptBank:
    """Build one shipped bank from its source."""
    if name in HANDWRITTEN:
        bank = load_text_bank(builtin_dir() / "sources" / f"{HANDWRITTEN[name]}.txt")
        prov = {**bank.provenance, "file": f"concept_banks/sources/{HANDWRITTEN[name]}.txt"}
        return dataclasses.replace(bank, provenance=prov)
    if name == "cub200":
        return cub200_bank()
    if name == "imagenet":
        return imagenet_bank()
    raise KeyError(f"no shipped bank {name!r}; shipped banks are {SHIPPED}")


def write_all(out_dir: Path | None = None) -> list[Path]:
    """Rebuild every shipped bank's JSON file."""
    out = out_dir or builtin_dir()
    paths = []
    for name in SHIPPED:
        path = out / f"{name}.json"
        build(name).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in write_all():
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KB)")
