"""On-disk cache of language-model answers: one JSON file per answer, written atomically.

The key covers everything that determines an answer: the template (name, version and a
hash of its wording), the class name and description, the model identity and the
sampling settings. A re-run with the same inputs therefore reproduces the bank exactly
and sends no request; a crash mid-run keeps every answer already received, because each
is renamed into place as soon as it arrives.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cbm.exceptions import ArtefactError
from cbm.io import read_json, write_json


def answer_key(
    template: dict[str, Any],
    class_name: str,
    description: str | None,
    model_id: str,
    settings: dict[str, Any],
) -> str:
    """The cache key (a SHA-256 hex digest) of one request."""
    payload = {
        "template": template,
        "class": class_name,
        "description": description or "",
        "model": model_id,
        "settings": settings,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """A folder of cached answers, ``<root>/<key[:2]>/<key>.json``.

    Parameters
    ----------
    root
        The cache folder; created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached answer text, or ``None``; an unreadable entry counts as missing."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = read_json(path)
        except ArtefactError:
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        answer = record.get("answer")
        return answer if isinstance(answer, str) else None

    def put(self, key: str, answer: str, request: dict[str, Any]) -> None:
        """Store one answer with the request that produced it."""
        write_json(
            self._path(key),
            {
                "key": key,
                "request": request,
                "answer": answer,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        )

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json")) if self.root.is_dir() else 0
