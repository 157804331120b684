"""The audit report as Markdown (figures linked by relative path)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cbm.audit.report import AuditReport


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if np.isnan(value) else f"{value:.3f}"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    return str(value)


def table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (floats to 3 decimals, NaN as n/a)."""
    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def _figure(figures: Mapping[str, Path], name: str, base: Path | None) -> list[str]:
    if name not in figures:
        return []
    path = figures[name]
    rel = path.relative_to(base) if base is not None and path.is_relative_to(base) else path
    return ["", f"![{name}]({rel.as_posix()})"]


def to_markdown(
    report: AuditReport, figures: Mapping[str, Path] | None = None, base: Path | None = None
) -> str:
    """Render ``report``; ``figures`` from :func:`make_figures`, linked relative to ``base``."""
    figs = dict(figures or {})
    m, t = report.model, report.task
    out = [
        "# Concept bottleneck audit",
        "",
        f"- backbone: {m['backbone']}",
        f"- concept bank: {m['concept_bank']} ({m['n_concepts']} concepts), "
        f"{m['n_classes']} classes, NEC {m['nec']:.2f}",
        f"- evaluation data: {report.data or 'unknown'}",
    ]
    if t:
        out += [
            "",
            "## Task",
            "",
            table(pd.DataFrame([{k: v for k, v in t.items()}])),
            "",
            "`effective_concepts_*`: concepts that carry 95% of each decision's |logit| "
            "contributions. `random_bank_accuracy_at_nec`: the same L1 path on a random "
            "bank of the same size, best head with NEC at most the model's; "
            "`l1_path_accuracy_at_nec`: the same for the model's own concepts.",
            *_figure(figs, "accuracy_vs_nec", base),
            *_figure(figs, "reliability", base),
            *_figure(figs, "effective_concepts", base),
        ]
    if report.existence is not None:
        ex = ", ".join(f"top-{k}: {v:.1%}" for k, v in report.existence.items())
        out += ["", "## Concept existence", "", f"Claimed concepts truly present: {ex}."]
    if report.concept_quality is not None:
        out += ["", "## Concept quality and health", "", table(report.concept_quality)]
        out += _figure(figs, "concept_quality", base)
    if report.importance is not None:
        out += ["", "## Importance vs true class-level frequency", "", table(report.importance)]
    if report.localisation is not None:
        out += ["", "## Localisation", "", table(report.localisation)]
        out += _figure(figs, "localisation", base)
        out += _figure(figs, "concept_maps", base)
    if report.information is not None:
        out += [
            "",
            "## Label information (cross-fitted classifier lower bound, bits)",
            "",
            table(report.information),
            "",
            "`fraction`: share of the embedding's label information; errors are one "
            "standard error (the figure shows 95%).",
            *_figure(figs, "information", base),
        ]
    if report.leakage is not None:
        out += [
            "",
            "## Leakage check: soft vs binarised (score > training mean) vs random bank",
            "",
            table(report.leakage),
            "",
            "`dense_*`: L2 logistic regression on all concepts; `*_at_nec`: best head of "
            "the L1 path with NEC at most the model's. Soft far above binarised, with "
            "binarised near random, means the head reads more than concept presence.",
        ]
    if report.skipped:
        out += ["", "## Skipped sections", ""]
        out += [f"- {name}: {why}" for name, why in report.skipped.items()]
    per_class = m.get("concepts_per_class") or {}
    if per_class:
        out += ["", "## What each class rests on", ""]
        for cls, concepts in per_class.items():
            text = ", ".join(f"{c} ({w:+.2f})" for c, w in concepts) or "(no concept)"
            out.append(f"- **{cls}**: {text}")
    return "\n".join(out) + "\n"
