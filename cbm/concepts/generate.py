"""Generating a concept bank from class names with a language model.

One request per (class, template); every answer is cached as soon as it arrives, so a
failure on class 57 of 100 loses nothing: re-running sends only the missing requests.
A request that fails after retries, or an answer with nothing parseable in it, is
skipped with a warning and listed in :attr:`GenerationResult.failures`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cbm
from cbm.concepts.bank import ConceptBank
from cbm.concepts.llm import LLMClient, LLMError
from cbm.concepts.parse import concept_key, parse_concepts
from cbm.concepts.response_cache import ResponseCache, answer_key
from cbm.concepts.templates import DEFAULT_TEMPLATES, PromptTemplate, get_template
from cbm.exceptions import ValidationError


@dataclass(frozen=True)
class Answer:
    """The parsed answer for one (class, template)."""

    class_name: str
    template: str
    group: str
    concepts: tuple[str, ...]
    raw: str
    from_cache: bool


@dataclass
class GenerationResult:
    """Everything one generation run produced."""

    answers: list[Answer]
    failures: list[dict[str, str]]
    provenance: dict[str, Any]
    requests_sent: int = 0
    cache_hits: int = 0
    class_names: list[str] = field(default_factory=list)

    def concepts_by_class(self) -> dict[str, list[str]]:
        """Class name -> its concepts over all templates, in answer order."""
        out: dict[str, list[str]] = {c: [] for c in self.class_names}
        for a in self.answers:
            out.setdefault(a.class_name, []).extend(a.concepts)
        return out

    def to_bank(self, name: str) -> ConceptBank:
        """One bank of all unique concepts; the provenance maps each concept to its classes."""
        order: dict[str, tuple[str, str]] = {}
        classes: dict[str, list[str]] = {}
        for a in self.answers:
            for c in a.concepts:
                k = concept_key(c)
                if k not in order:
                    order[k] = (c, a.group)
                    classes[c] = []
                first = order[k][0]
                if a.class_name not in classes[first]:
                    classes[first].append(a.class_name)
        if not order:
            raise ValidationError(
                "no concepts were generated: every request failed or returned nothing "
                f"parseable ({len(self.failures)} failures; see GenerationResult.failures)"
            )
        names = [v[0] for v in order.values()]
        return ConceptBank(
            name=name,
            concepts=tuple(names),
            groups=tuple(v[1] for v in order.values()),
            provenance={**self.provenance, "concept_classes": classes},
        )


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="concepts", unit="answer")


def generate_concepts(
    class_names: Sequence[str],
    client: LLMClient,
    templates: Sequence[str | PromptTemplate] = DEFAULT_TEMPLATES,
    cache_dir: str | Path | None = None,
    descriptions: Mapping[str, str] | None = None,
    progress: bool = True,
) -> GenerationResult:
    """Ask ``client`` for the concepts of every class with every template.

    Parameters
    ----------
    class_names
        The classes, e.g. ``["airplane", "cat"]``.
    client
        An :class:`~cbm.concepts.llm.LLMClient` (OpenAI-compatible or transformers).
    templates
        Template names or objects; see :func:`cbm.concepts.templates.template_names`.
    cache_dir
        Folder of cached answers; re-runs with the same inputs send no request.
    descriptions
        Optional class name -> short description, to disambiguate ("crane" the bird).
    progress
        Show a progress bar.

    Returns
    -------
    GenerationResult
        Parsed answers, failures (skipped with a warning), and provenance.
    """
    names = [str(c).strip() for c in class_names]
    if not names or any(not c for c in names):
        raise ValidationError("give at least one class name, none of them blank")
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ValidationError(f"class names must be unique; repeated: {dupes}")
    tmpls = [get_template(t) for t in templates]
    descriptions = dict(descriptions or {})
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    settings = client.settings()
    result = GenerationResult(
        answers=[],
        failures=[],
        provenance={
            "source": "llm",
            "model": client.model_id,
            "settings": settings,
            "templates": [t.identity() for t in tmpls],
            "date": datetime.now(timezone.utc).date().isoformat(),
            "cbm_version": cbm.__version__,
            "n_classes": len(names),
        },
        class_names=names,
    )
    with _progress(len(names) * len(tmpls), progress) as bar:
        for cls in names:
            for t in tmpls:
                _one(result, client, cache, t, cls, descriptions.get(cls), settings)
                bar.update(1)
    if result.failures:
        warnings.warn(
            f"{len(result.failures)} of {len(names) * len(tmpls)} requests gave no concepts "
            "and were skipped (see GenerationResult.failures); answers received are kept"
            + (" in the cache; re-run to retry only the missing ones" if cache else ""),
            stacklevel=2,
        )
    result.provenance["failures"] = len(result.failures)
    return result


def _one(
    result: GenerationResult,
    client: LLMClient,
    cache: ResponseCache | None,
    template: PromptTemplate,
    cls: str,
    description: str | None,
    settings: dict[str, Any],
) -> None:
    key = answer_key(template.identity(), cls, description, client.model_id, settings)
    raw = cache.get(key) if cache is not None else None
    from_cache = raw is not None
    if raw is None:
        messages = template.messages(cls, description)
        try:
            raw = client.complete(messages)
        except LLMError as err:
            result.failures.append({"class": cls, "template": template.name, "reason": str(err)})
            warnings.warn(f"skipped {cls!r} / {template.name}: {err}", stacklevel=3)
            return
        result.requests_sent += 1
        if cache is not None:
            request = {
                "template": template.identity(),
                "class": cls,
                "description": description,
                "model": client.model_id,
                "settings": settings,
                "messages": messages,
            }
            cache.put(key, raw, request)
    else:
        result.cache_hits += 1
    parsed = parse_concepts(raw, kind=template.kind)
    if not parsed.concepts:
        reason = f"no concepts found in the answer {raw[:120]!r}"
        result.failures.append({"class": cls, "template": template.name, "reason": reason})
        warnings.warn(f"skipped {cls!r} / {template.name}: {reason}", stacklevel=3)
        return
    result.answers.append(
        Answer(cls, template.name, template.group, tuple(parsed.concepts), raw, from_cache)
    )
