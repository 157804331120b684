"""Prompt templates for concept generation, kept as versioned data (``prompt_templates.json``).

A template's name and version go into every cached answer's key and into the provenance
of every bank generated with it, so a bank can always be traced to the exact wording.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cbm.exceptions import ConfigurationError

_DATA = Path(__file__).with_name("prompt_templates.json")


@dataclass(frozen=True)
class PromptTemplate:
    """One way of asking a language model for concepts of a class.

    Parameters
    ----------
    name
        Short identifier, e.g. ``"important"``.
    version
        Bumped whenever the wording changes.
    group
        Concept group the answers are filed under (``"feature"``, ``"superclass"``, ...).
    kind
        ``"phrases"`` (short noun phrases) or ``"sentences"`` (LaBo-style descriptions).
    system, user
        Message texts; ``user`` contains ``{cls}`` and ``{context}``.
    """

    name: str
    version: str
    group: str
    kind: str
    system: str
    user: str

    def __post_init__(self) -> None:
        if self.kind not in ("phrases", "sentences"):
            raise ConfigurationError(
                f"template {self.name!r} has kind {self.kind!r}; use 'phrases' or 'sentences'"
            )
        if "{cls}" not in self.user:
            raise ConfigurationError(f"template {self.name!r}: the user text must contain {{cls}}")

    def messages(self, class_name: str, description: str | None = None) -> list[dict[str, str]]:
        """Chat messages asking for the concepts of one class."""
        context = f" ({description.strip()})" if description and description.strip() else ""
        user = self.user.replace("{cls}", class_name.strip()).replace("{context}", context)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    @property
    def digest(self) -> str:
        """Hash of the wording, so an edited-but-not-re-versioned template never hits the cache."""
        text = json.dumps([self.system, self.user, self.kind], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        """What provenance records about this template."""
        return {"name": self.name, "version": self.version, "digest": self.digest}


@lru_cache(maxsize=1)
def _load() -> dict[str, PromptTemplate]:
    data = json.loads(_DATA.read_text(encoding="utf-8"))
    out: dict[str, PromptTemplate] = {}
    for item in data["templates"]:
        t = PromptTemplate(**item)
        out[t.name] = t
    return out


def template_names() -> list[str]:
    """Names of the built-in templates."""
    return list(_load())


def get_template(template: str | PromptTemplate) -> PromptTemplate:
    """A built-in template by name (or the given template unchanged)."""
    if isinstance(template, PromptTemplate):
        return template
    templates = _load()
    if template not in templates:
        raise ConfigurationError(
            f"unknown prompt template {template!r}; built-in templates are {sorted(templates)}"
        )
    return templates[template]


DEFAULT_TEMPLATES: tuple[str, ...] = ("important", "superclass", "around")
