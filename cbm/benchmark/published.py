"""Published accuracies of other concept-bottleneck systems, kept as data with their source.

The numbers live in ``published.json`` beside this module (one record per system,
dataset, backbone and NEC regime, each naming its paper), so that adding a system is a
data change and the table code never carries a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cbm.exceptions import ArtefactError

PUBLISHED_FILE = Path(__file__).with_name("published.json")


@dataclass(frozen=True)
class PublishedResult:
    """One published accuracy (in percent) and where it comes from."""

    system: str
    dataset: str
    backbone: str
    nec: str
    bank: str
    accuracy: float
    source: str
    note: str = ""

    def label(self) -> str:
        """Short text for a table cell, e.g. ``"VLG-CBM 88.55 (CLIP RN50)"``."""
        return f"{self.system} {self.accuracy:g} ({self.backbone})"


@lru_cache(maxsize=1)
def published_results(path: Path = PUBLISHED_FILE) -> tuple[PublishedResult, ...]:
    """All records of ``published.json``, with each record's full citation."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sources = data["sources"]
        return tuple(
            PublishedResult(
                system=r["system"],
                dataset=r["dataset"],
                backbone=r["backbone"],
                nec=str(r["nec"]),
                bank=r["bank"],
                accuracy=float(r["accuracy"]),
                source=sources[r["source"]],
                note=r.get("note", ""),
            )
            for r in data["results"]
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ArtefactError(f"{path} is not a valid published-results file: {err}") from err


def matching(dataset: str, nec: str, bank: str) -> list[PublishedResult]:
    """Published results for the same dataset, NEC regime and kind of concept bank."""
    return [
        r for r in published_results() if (r.dataset, r.nec, r.bank) == (dataset, str(nec), bank)
    ]
