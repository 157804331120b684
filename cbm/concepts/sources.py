"""Concept sources that need no language model: hand-written files, WordNet, CUB attributes.

Hand-written bank format (UTF-8 text, ``#`` starts a comment)::

    name: my-birds                  # optional header lines "key: value" before any entry
    description: my own bird concepts
    [colour]                        # a group: following concepts belong to it
    red crown
    wing bars | a bird with white bars across its wings     # name | prompt
    @ cardinal                      # a class block: "group: c1; c2; ..." lines follow
    feature: red plumage; black face mask
    context: bird feeder; snowy branch

Class blocks record which classes each concept was written for (``concept_classes`` in
the provenance), which :func:`cbm.concepts.select.select_bank` uses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cbm.concepts.bank import ConceptBank
from cbm.concepts.parse import concept_key
from cbm.exceptions import ArtefactError, ValidationError

_OBJECT = "00002684"  # WordNet 3.0 noun synset 'object, physical object'
_PERSON = "00007846"  # 'person, individual, someone'
WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/opt/homebrew/share/wordnet")


def parse_text_bank(text: str, name: str = "handwritten", source: str = "<text>") -> ConceptBank:
    """Read the hand-written bank format (see the module docstring)."""
    header: dict[str, str] = {}
    entries: list[tuple[str, str, str]] = []  # name, prompt, group
    classes: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    group, cls = "", None

    def add(concept: str, prompt: str, grp: str, line_no: int) -> None:
        concept = concept.strip()
        if not concept:
            raise ValidationError(f"{source}:{line_no}: empty concept name")
        key = concept_key(concept)
        if key not in first:
            first[key] = concept
            entries.append((concept, prompt.strip() or concept, grp))
            classes[concept] = []
        if cls is not None and cls not in classes[first[key]]:
            classes[first[key]].append(cls)

    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            group, cls = line[1:-1].strip(), None
        elif line.startswith("@"):
            cls = line[1:].strip()
            if not cls:
                raise ValidationError(f"{source}:{no}: '@' must be followed by a class name")
        elif cls is not None:
            grp, sep, rest = line.partition(":")
            if not sep:
                raise ValidationError(
                    f"{source}:{no}: inside a class block write 'group: concept; concept', "
                    f"got {line!r}"
                )
            for item in rest.split(";"):
                if item.strip():
                    add(item, item, grp.strip(), no)
        elif not entries and not group and re.match(r"^[a-z_]+\s*:", line):
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        else:
            concept, _, prompt = line.partition("|")
            add(concept, prompt, group, no)
    if not entries:
        raise ValidationError(f"{source}: no concepts found")
    provenance: dict[str, Any] = {"source": "hand-written", "file": source, **header}
    if any(classes.values()):
        provenance["concept_classes"] = {c: v for c, v in classes.items() if v}
    groups = tuple(g for _, _, g in entries)
    return ConceptBank(
        name=header.get("name", name),
        concepts=tuple(c for c, _, _ in entries),
        prompts=tuple(p for _, p, _ in entries),
        groups=groups if all(groups) else (),
        provenance=provenance,
        version=header.get("version", "1"),
    )


def load_text_bank(path: str | Path) -> ConceptBank:
    """Read a hand-written bank file."""
    p = Path(path)
    if not p.is_file():
        raise ArtefactError(f"{p} does not exist or is not a file")
    return parse_text_bank(p.read_text(encoding="utf-8"), name=p.stem, source=str(p))


# ---- WordNet (the Debian/Ubuntu package ``wordnet-base``, read directly: no nltk) ----


def find_wordnet(directory: str | Path | None = None) -> Path:
    """The folder holding WordNet's ``data.noun`` and ``index.noun``."""
    for d in [directory] if directory else WORDNET_DIRS:
        if d is not None and (Path(d) / "data.noun").is_file():
            return Path(d)
    raise ArtefactError(
        "WordNet data files not found (looked in "
        f"{[str(directory)] if directory else list(WORDNET_DIRS)}); install them with "
        "'apt install wordnet-base' or pass the folder holding data.noun"
    )


class WordNet:
    """Nouns of WordNet 3.0: lemma lookup, hypernyms and part meronyms."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = find_wordnet(directory)
        self._index: dict[str, list[str]] = {}
        for line in (self.directory / "index.noun").read_text("latin-1").splitlines():
            if line.startswith(" "):
                continue  # licence header
            f = line.split()
            n_ptr = int(f[3])
            n_senses = int(f[2])
            self._index[f[0]] = f[6 + n_ptr : 6 + n_ptr + n_senses]
        self._data = (self.directory / "data.noun").read_bytes()
        self._records: dict[str, tuple[list[str], list[tuple[str, str]], str]] = {}

    def synsets(self, lemma: str) -> list[str]:
        """Synset offsets of a noun, most frequent sense first."""
        key = lemma.strip().lower().replace(" ", "_")
        return self._index.get(key) or self._index.get(key.replace("-", "_"), [])

    def visual_sense(self, lemma: str) -> str | None:
        """The most frequent sense that is a physical object and, if possible, not a person.

        ImageNet-style class names are things in photos: 'tiger' the big cat, not the
        first sense 'a fierce or audacious person'. A name with several physical senses
        keeps the most frequent one, which can be the wrong one ('hammerhead' gives the
        hammer's head, not the shark); class descriptions or WordNet ids avoid that.
        """
        senses = self.synsets(lemma)
        physical = [s for s in senses if _OBJECT in self.hypernyms(s, 20)]
        objects = [s for s in physical if _PERSON not in self.hypernyms(s, 20)]
        best = objects or physical or senses
        return best[0] if best else None

    def _record(self, offset: str) -> tuple[list[str], list[tuple[str, str]], str]:
        if offset not in self._records:
            self._records[offset] = self._parse_record(offset)
        return self._records[offset]

    def _parse_record(self, offset: str) -> tuple[list[str], list[tuple[str, str]], str]:
        start = int(offset)
        line = self._data[start : self._data.index(b"\n", start)].decode("latin-1")
        body, _, gloss = line.partition(" | ")
        f = body.split()
        n_words = int(f[3], 16)
        words = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        i = 4 + 2 * n_words
        n_ptr = int(f[i])
        ptrs = [(f[i + 1 + 4 * k], f[i + 2 + 4 * k]) for k in range(n_ptr)]
        return [re.sub(r"\(\w+\)$", "", w) for w in words], ptrs, gloss.strip()

    def lemmas(self, offset: str) -> list[str]:
        return self._record(offset)[0]

    def gloss(self, offset: str) -> str:
        return self._record(offset)[2]

    def related(self, offset: str, symbols: Iterable[str]) -> list[str]:
        wanted = set(symbols)
        return [o for sym, o in self._record(offset)[1] if sym in wanted]

    def hypernyms(self, offset: str, depth: int = 2) -> list[str]:
        """Offsets of the hypernyms up to ``depth`` levels (instance hypernyms included)."""
        out: list[str] = []
        frontier = [offset]
        for _ in range(depth):
            frontier = [h for o in frontier for h in self.related(o, ("@", "@i"))]
            out += [h for h in frontier if h not in out]
        return out

    def parts(self, offset: str, inherit: int = 1) -> list[str]:
        """Offsets of part meronyms, also those of the first ``inherit`` hypernym levels."""
        out = self.related(offset, ("%p",))
        for h in self.hypernyms(offset, inherit):
            out += [p for p in self.related(h, ("%p",)) if p not in out]
        return out


def wordnet_bank(
    class_names: Sequence[str],
    name: str = "wordnet",
    hypernym_depth: int = 2,
    wordnet: WordNet | None = None,
    inherit_parts: int = 0,
) -> ConceptBank:
    """Superclasses (hypernyms) and parts (meronyms) of each class from WordNet.

    Each class is looked up by its name as a noun and its most frequent physical-object
    sense is used (:meth:`WordNet.visual_sense`);
    classes WordNet does not know are listed in the provenance (``unknown_classes``).
    """
    wn = wordnet or WordNet()
    lines: list[str] = []
    unknown: list[str] = []
    for cls in class_names:
        s = wn.visual_sense(cls)
        if s is None:
            unknown.append(cls)
            continue
        supers = [wn.lemmas(h)[0] for h in wn.hypernyms(s, hypernym_depth)]
        parts = [wn.lemmas(p)[0] for p in wn.parts(s, inherit_parts)]
        lines.append(f"@ {cls}")
        if supers:
            lines.append("superclass: " + "; ".join(supers))
        if parts:
            lines.append("part: " + "; ".join(parts))
    if not any(not ln.startswith("@") for ln in lines):
        raise ValidationError(f"WordNet knows none of the classes {list(class_names)[:5]}...")
    bank = parse_text_bank("\n".join(lines), name=name, source="wordnet")
    provenance = {
        "source": "wordnet",
        "wordnet": "WordNet 3.0 (Princeton University), noun data files",
        "method": f"most frequent physical-object noun sense; hypernyms to depth {hypernym_depth}; "
        f"part meronyms of the class and of its hypernyms up to {inherit_parts} levels",
        "unknown_classes": unknown,
        "concept_classes": bank.provenance.get("concept_classes", {}),
    }
    return dataclasses.replace(bank, provenance=provenance)
