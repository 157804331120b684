"""``ConceptBank``: the concept vocabulary of a bottleneck, with where it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbm
from cbm.exceptions import ArtefactError, ValidationError
from cbm.io import SCHEMA_VERSION, check_config, read_json, write_json

MAX_NAME_LENGTH = 200


def normalise_name(name: str) -> str:
    """The key under which two concept names count as duplicates."""
    return re.sub(r"\s+", " ", name.strip().casefold())


def builtin_dir() -> Path:
    """Where the shipped banks live (inside the wheel, or at the repository root)."""
    package = Path(cbm.__file__).parent
    for candidate in (package / "concept_banks", package.parent / "concept_banks"):
        if candidate.is_dir():
            return candidate
    raise ArtefactError("the shipped concept_banks folder is missing from this installation")


@dataclass(frozen=True)
class ConceptBank:
    """Named concepts with the texts that describe them.

    Parameters
    ----------
    name
        Bank name, e.g. ``"shapes"``.
    concepts
        Concept names, unique up to case and spacing.
    prompts
        One text per concept, fed to the text encoder; defaults to the names.
    groups
        Optional group per concept (e.g. ``"colour"``), used for group interventions.
    provenance
        Free-form record of how the bank was made (author, model, prompt, date).
    version
        Version of this bank's content.
    """

    name: str
    concepts: tuple[str, ...]
    prompts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    version: str = "1"

    def __post_init__(self) -> None:
        concepts = tuple(self.concepts)
        if not concepts:
            raise ValidationError(f"concept bank {self.name!r} is empty: give at least one concept")
        seen: dict[str, int] = {}
        for i, c in enumerate(concepts):
            if not isinstance(c, str) or not c.strip():
                raise ValidationError(
                    f"concept bank {self.name!r}: concept {i} is blank or not a string ({c!r})"
                )
            if len(c) > MAX_NAME_LENGTH:
                raise ValidationError(
                    f"concept bank {self.name!r}: concept {i} is {len(c)} characters long "
                    f"(at most {MAX_NAME_LENGTH}); put long descriptions in prompts instead"
                )
            key = normalise_name(c)
            if key in seen:
                raise ValidationError(
                    f"concept bank {self.name!r}: {c!r} (#{i}) duplicates "
                    f"{concepts[seen[key]]!r} (#{seen[key]}); names must be unique "
                    "ignoring case and spacing"
                )
            seen[key] = i
        prompts = tuple(self.prompts) or concepts
        if len(prompts) != len(concepts):
            raise ValidationError(
                f"concept bank {self.name!r} has {len(concepts)} concepts "
                f"but {len(prompts)} prompts"
            )
        for i, p in enumerate(prompts):
            if not isinstance(p, str) or not p.strip():
                raise ValidationError(f"concept bank {self.name!r}: prompt {i} is blank ({p!r})")
        groups = tuple(self.groups)
        if groups and len(groups) != len(concepts):
            raise ValidationError(
                f"concept bank {self.name!r} has {len(concepts)} concepts but {len(groups)} groups"
            )
        object.__setattr__(self, "concepts", concepts)
        object.__setattr__(self, "prompts", prompts)
        object.__setattr__(self, "groups", groups)

    def __len__(self) -> int:
        return len(self.concepts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (also embedded in saved models)."""
        return {
            "kind": "concept_bank",
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "version": self.version,
            "cbm_version": cbm.__version__,
            "provenance": self.provenance,
            "concepts": [
                {"name": c, "prompt": p, **({"group": self.groups[i]} if self.groups else {})}
                for i, (c, p) in enumerate(zip(self.concepts, self.prompts, strict=True))
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> ConceptBank:
        check_config(data, "concept_bank", Path(source))
        items = data.get("concepts")
        if not isinstance(items, list):
            raise ArtefactError(f"{source}: 'concepts' must be a list of objects")
        try:
            names = tuple(str(it["name"]) for it in items)
            prompts = tuple(str(it.get("prompt", it["name"])) for it in items)
        except (TypeError, KeyError) as err:
            raise ArtefactError(f"{source}: every concept needs a 'name' ({err})") from err
        has_groups = bool(items) and all("group" in it for it in items)
        return cls(
            name=str(data.get("name", "")),
            concepts=names,
            prompts=prompts,
            groups=tuple(str(it["group"]) for it in items) if has_groups else (),
            provenance=dict(data.get("provenance") or {}),
            version=str(data.get("version", "1")),
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ConceptBank:
        """Load a bank from a JSON file, a hand-written ``.txt`` bank
        (:func:`cbm.concepts.sources.load_text_bank`), or a shipped bank by name
        (e.g. ``"shapes"``)."""
        p = Path(path)
        if p.suffix == ".txt":
            from cbm.concepts.sources import load_text_bank  # sources imports this module

            return load_text_bank(p)
        if not p.suffix and not p.exists():
            shipped = builtin_dir() / f"{p.name}.json"
            if not shipped.is_file():
                names = sorted(f.stem for f in builtin_dir().glob("*.json"))
                raise ArtefactError(
                    f"no concept bank file {p} and no shipped bank {p.name!r} ({names})"
                )
            p = shipped
        return cls.from_dict(read_json(p), source=str(p))

    def subset(self, indices: list[int], name: str | None = None) -> ConceptBank:
        """A bank with the chosen concepts, recording the selection in provenance."""
        return ConceptBank(
            name=name or self.name,
            concepts=tuple(self.concepts[i] for i in indices),
            prompts=tuple(self.prompts[i] for i in indices),
            groups=tuple(self.groups[i] for i in indices) if self.groups else (),
            provenance={**self.provenance, "subset_of": self.name, "indices": list(indices)},
            version=self.version,
        )
