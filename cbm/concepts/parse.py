"""Turning what language models actually answer into clean concept names.

Models answer with numbered or bulleted lists, JSON (bare or in a fenced block), prose
with a list inside, markdown emphasis, trailing punctuation, explanations after a dash,
duplicates differing only in case, articles or plural. :func:`parse_concepts` handles
all of these; :func:`clean_concept` is idempotent (cleaning a clean name changes nothing)
and :func:`concept_key` is the key under which two names count as the same concept.

Written by hand because the rules are specific to concept lists (no parser library knows
that "wings - used for flying" means "wings"), and each rule is tested on real answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_PHRASE_CHARS = 80
MAX_SENTENCE_CHARS = 200

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_MARKER = re.compile(
    r"^\s*(?:[-*+\u2022\u2023\u25e6\u2013\u2014]|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)])\s+"
)
_LEAD_IN = re.compile(
    r"^(?:here (?:are|is)|sure|certainly|of course|okay|ok|the following|some|these are)\b",
    re.IGNORECASE,
)
_EXPLANATION = re.compile(r"\s+(?:-|\u2013|\u2014|:)\s+|:\s+|\s+\(")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_EDGE = " \t\"'`\u201c\u201d\u2018\u2019.,;:!?*_-\u2022"
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
_KEYS = ("concepts", "features", "items", "answer", "list", "categories", "things")


@dataclass
class ParseResult:
    """Concepts parsed from one answer, and the pieces that were dropped with the reason."""

    concepts: list[str]
    dropped: list[tuple[str, str]] = field(default_factory=list)


def _from_json(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, dict):
                named = [v[k] for k in ("name", "concept", "feature", "text") if k in v]
                if named and isinstance(named[0], str):
                    out.append(named[0])
            elif isinstance(v, list):
                out.extend(_from_json(v) or [])
        return out
    if isinstance(value, dict):
        for k in _KEYS:
            if k in value:
                return _from_json(value[k])
        out = []
        for v in value.values():
            if isinstance(v, (list, str)):
                out.extend(_from_json(v) or [])
        return out
    return None


def _try_json(text: str) -> list[str] | None:
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
        cand = cand.strip()
        starts = [i for i in (cand.find("["), cand.find("{")) if i >= 0]
        if not starts:
            continue
        start = min(starts)
        end = max(cand.rfind("]"), cand.rfind("}"))
        if end <= start:
            continue
        try:
            parsed = json.loads(cand[start : end + 1])
        except json.JSONDecodeError:
            continue
        items = _from_json(parsed)
        if items is not None:
            return items
    return None


def _split_inline(text: str) -> list[str]:
    """'Features include: wings, a tail, and engines.' -> ['wings', 'a tail', 'engines']."""
    if ":" in text:
        text = text.split(":", 1)[1]
    parts = re.split(r";|,\s*(?:and|or)\s+|,|\s+and\s+", text)
    return [p for p in parts if p.strip()]


def _candidate_items(text: str) -> list[str]:
    items = _try_json(text)
    if items is not None:
        return items
    text = _FENCE.sub(lambda m: m.group(1), text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    marked = [ln for ln in lines if _MARKER.match(ln)]
    if marked:
        return [_MARKER.sub("", ln, count=1) for ln in marked]
    if len(lines) == 1:
        line = lines[0]
        after = line.split(":", 1)[1] if ":" in line else line
        # one line is a list only if it clearly is one: 'a large, metal body' is one item
        if (
            ";" in after
            or after.count(",") >= 2
            or (":" in line and ("," in after or " and " in after))
        ):
            return _split_inline(line)
    return [ln for ln in lines if not _LEAD_IN.match(ln.strip()) or ":" not in ln]


def clean_concept(
    item: str, max_chars: int = MAX_PHRASE_CHARS, drop_explanation: bool = True
) -> str | None:
    """Normalise one list item into a concept name, or ``None`` if nothing usable is left.

    Removes list markers, markdown emphasis, surrounding quotes and punctuation, and
    an explanation after a dash, colon or parenthesis (always when ``drop_explanation``,
    otherwise only when the item is longer than ``max_chars``). Lower-cases
    everything except all-capital acronyms. Idempotent.
    """
    s = _EMPHASIS.sub("", item)
    s = _MARKER.sub("", s, count=1)
    s = re.sub(r"\s+", " ", s).strip(_EDGE).strip()
    if drop_explanation or len(s) > max_chars:
        head = _EXPLANATION.split(s, maxsplit=1)[0].strip(_EDGE).strip()
        s = head if head else s
    if not s or len(s) > max_chars or not re.search(r"[^\W\d_]", s):
        return None
    words = [w if (len(w) > 1 and w.isupper() and w.isalpha()) else w.lower() for w in s.split()]
    s = " ".join(words)
    # a second pass makes the function idempotent: stripping can expose another marker
    again = _MARKER.sub("", _EMPHASIS.sub("", s), count=1).strip(_EDGE).strip()
    return s if again == s else clean_concept(again, max_chars, drop_explanation)


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("ves") and len(word) > 4:
        return word[:-3] + "f"
    if word.endswith("s"):
        return word[:-1]
    return word


def concept_key(name: str) -> str:
    """The key under which concepts are duplicates: case, articles, punctuation, plural."""
    s = re.sub(r"[^\w\s]", " ", name.casefold())
    s = _ARTICLE.sub("", re.sub(r"\s+", " ", s).strip())
    return " ".join(_singular(w) for w in s.split())


def dedupe(names: Iterable[str]) -> list[str]:
    """Keep the first of each group of names with the same :func:`concept_key`."""
    seen: set[str] = set()
    out: list[str] = []
    for n in names:
        k = concept_key(n)
        if k and k not in seen:
            seen.add(k)
            out.append(n)
    return out


def parse_concepts(text: str, kind: str = "phrases") -> ParseResult:
    """Parse one model answer into unique, cleaned concept names.

    Parameters
    ----------
    text
        The raw answer.
    kind
        ``"phrases"`` keeps items up to :data:`MAX_PHRASE_CHARS` characters;
        ``"sentences"`` up to :data:`MAX_SENTENCE_CHARS`.
    """
    limit = MAX_SENTENCE_CHARS if kind == "sentences" else MAX_PHRASE_CHARS
    result = ParseResult(concepts=[])
    seen: set[str] = set()
    for raw in _candidate_items(text or ""):
        if kind == "phrases" and _LEAD_IN.match(raw.strip()) and raw.rstrip().endswith(":"):
            result.dropped.append((raw, "lead-in sentence, not an item"))
            continue
        name = clean_concept(raw, limit, drop_explanation=kind != "sentences")
        if name is None:
            result.dropped.append((raw, f"empty or longer than {limit} characters"))
            continue
        key = concept_key(name)
        if key in seen:
            result.dropped.append((raw, "duplicate"))
            continue
        seen.add(key)
        result.concepts.append(name)
    return result
