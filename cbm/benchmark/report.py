"""Writing the benchmark's cells as CSV and as a Markdown table beside the published numbers."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from cbm.benchmark.grid import Cell
from cbm.benchmark.published import matching, published_results

BANK_LABELS = {
    "text": "LLM/text bank",
    "sae": "SAE bank",
    "classes": "classifier-head classes",
    "random": "random bank",
    "probe": "linear probe",
}
CSV_COLUMNS = (
    "dataset",
    "backbone",
    "weights_id",
    "nec_target",
    "bank",
    "bank_name",
    "n_concepts",
    "accuracy_pct",
    "nec",
    "random_accuracy_pct",
    "random_nec",
    "gap_pct",
    "published",
    "status",
    "reason",
    "n_train",
    "n_test",
    "seconds",
    "notes",
)


def _pct(x: float) -> str:
    return "" if math.isnan(x) else f"{100 * x:.2f}"


def published_beside(cell: Cell) -> str:
    """Published results for the cell's dataset, NEC regime and kind of bank."""
    return "; ".join(r.label() for r in matching(cell.dataset, cell.nec_target, cell.bank))


def csv_rows(cells: Sequence[Cell]) -> list[dict[str, str]]:
    rows = []
    for c in cells:
        gap = c.accuracy - c.random_accuracy
        rows.append(
            {
                "dataset": c.dataset,
                "backbone": c.backbone,
                "weights_id": c.weights_id,
                "nec_target": c.nec_target,
                "bank": c.bank,
                "bank_name": c.bank_name,
                "n_concepts": str(c.n_concepts or ""),
                "accuracy_pct": _pct(c.accuracy),
                "nec": "" if math.isnan(c.nec) else f"{c.nec:.2f}",
                "random_accuracy_pct": _pct(c.random_accuracy),
                "random_nec": "" if math.isnan(c.random_nec) else f"{c.random_nec:.2f}",
                "gap_pct": _pct(gap),
                "published": published_beside(c),
                "status": c.status,
                "reason": c.reason,
                "n_train": str(c.n_train or ""),
                "n_test": str(c.n_test or ""),
                "seconds": f"{c.seconds:.1f}",
                "notes": c.notes,
            }
        )
    return rows


def write_csv(path: Path, cells: Sequence[Cell]) -> Path:
    """One row per cell, columns :data:`CSV_COLUMNS`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(csv_rows(cells))
    return path


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(cells: Sequence[Cell], title: str = "cbm benchmark", command: str = "") -> str:
    """The results table, every row naming dataset, backbone and NEC, the random bank of
    the same size at the same NEC beside each bank, and published numbers beside those."""
    lines = [f"# {title}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        "Accuracy is top-1 on the test split (%). *Random control*: a bank of as many "
        "random unit directions, same head, same target NEC. NEC *dense*: the same "
        "solver with an L2 penalty only. *Published*: the numbers other systems report "
        "for the same dataset, NEC regime and kind of bank (their backbones differ; see "
        "the list below).",
        "",
        "| dataset | backbone | NEC | bank | concepts | accuracy | NEC reached "
        "| random control (NEC) | gap | train / test | published |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in cells:
        bank = BANK_LABELS.get(c.bank, c.bank) + (f" `{c.bank_name}`" if c.bank_name else "")
        if c.status != "ok":
            reason = c.reason if len(c.reason) <= 160 else c.reason[:157] + "..."
            lines.append(
                f"| {c.dataset} | {c.backbone} | {c.nec_target} | {_escape(bank)} | | "
                f"{c.status}: {_escape(reason)} | | | | | {published_beside(c)} |"
            )
            continue
        ctrl = (
            "—"
            if math.isnan(c.random_accuracy)
            else f"{100 * c.random_accuracy:.1f} ({c.random_nec:.1f})"
        )
        gap = (
            "—"
            if math.isnan(c.random_accuracy)
            else f"{100 * (c.accuracy - c.random_accuracy):+.1f}"
        )
        lines.append(
            f"| {c.dataset} | {c.backbone} | {c.nec_target} | {_escape(bank)} | {c.n_concepts} "
            f"| {100 * c.accuracy:.1f} | {c.nec:.1f} | {ctrl} | {gap} | {c.n_train} / {c.n_test} "
            f"| {published_beside(c)} |"
        )
    banks: dict[tuple[str, str, str], str] = {}
    for c in cells:
        if c.status == "ok" and c.notes:
            banks.setdefault((c.dataset, c.backbone, c.bank_name), c.notes)
    if banks:
        lines += ["", "## Concept banks", ""]
        lines += [f"* {d}, {b}, `{n}`: {_escape(text)}" for (d, b, n), text in banks.items()]
    lines += ["", "## Published reference numbers", ""]
    lines += ["| system | dataset | backbone | NEC | bank | accuracy | source |"]
    lines += ["|---|---|---|---|---|---:|---|"]
    for r in published_results():
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.system} | {r.dataset} | {r.backbone} | {r.nec} | {BANK_LABELS[r.bank]} "
            f"| {r.accuracy:g} | {_escape(r.source + note)} |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, cells: Sequence[Cell], command: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(cells, command=command), encoding="utf-8")
    return path
