"""Shared pieces of the workbench pages: cached loaders, session state, charts.

Layout and widgets only; every computation goes through ``cbm`` (``cbm.app_support``,
``cbm.app_edits`` and the model's public methods).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from cbm.app_edits import CaseEdit, concept_levels
from cbm.app_global import split_intervention_curves, workbench_intervener
from cbm.app_maps import CaseMaps, case_concept_maps
from cbm.app_support import (
    MAX_UPLOAD_BYTES,
    EvaluationSplit,
    load_backbone,
    load_evaluation,
)
from cbm.exceptions import CBMError
from cbm.interventions import Intervener, InterventionCurve
from cbm.model import ConceptBottleneckModel

POSITIVE = "#1f77b4"
NEGATIVE = "#d62728"


def device() -> str:
    return os.environ.get("CBM_APP_DEVICE", "cpu")


def max_upload_bytes() -> int:
    """The upload limit ``cbm app --max-upload-mb`` set (default: cbm's own limit)."""
    mb = os.environ.get("CBM_APP_MAX_UPLOAD_MB")
    return int(float(mb) * 1024 * 1024) if mb else MAX_UPLOAD_BYTES


def _stamp(path: str) -> float:
    """Modification time of the model's config: a re-saved model is reloaded."""
    try:
        return (Path(path) / "config.json").stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner="Loading the model ...", max_entries=8)
def _model(path: str, stamp: float) -> ConceptBottleneckModel:
    return ConceptBottleneckModel.load(path)


@st.cache_resource(show_spinner="Scoring the evaluation split ...", max_entries=8)
def _evaluation(path: str, stamp: float) -> EvaluationSplit | None:
    return load_evaluation(_model(path, stamp), path, device=device())


@st.cache_resource(show_spinner="Loading the backbone ...", max_entries=4)
def _backbone(path: str, stamp: float) -> Any:
    return load_backbone(_model(path, stamp), device=device())


@st.cache_resource(max_entries=8)
def _levels(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray]:
    split = _evaluation(path, stamp)
    model = _model(path, stamp)
    return concept_levels(None if split is None else split.scores, len(model.bank))


@st.cache_resource(max_entries=8)
def _intervener(path: str, stamp: float) -> Intervener:
    absent, present = _levels(path, stamp)
    split = _evaluation(path, stamp)
    neutral = None if split is None else split.scores.mean(axis=0)
    return workbench_intervener(_model(path, stamp), absent, present, neutral)


@st.cache_resource(show_spinner="Running the intervention curves ...", max_entries=16)
def _curves(
    path: str, stamp: float, strategies: tuple[str, ...], max_steps: int
) -> dict[str, InterventionCurve]:
    split = _evaluation(path, stamp)
    if split is None or split.concepts is None:
        return {}
    return split_intervention_curves(
        _intervener(path, stamp), split.scores, split.labels, split.concepts, strategies, max_steps
    )


@st.cache_resource(show_spinner="Computing concept activation maps ...", max_entries=64)
def _maps(path: str, stamp: float, case_key: str, upscale: int, _image: np.ndarray) -> CaseMaps:
    return case_concept_maps(_model(path, stamp), _backbone(path, stamp), _image, upscale)


def intervener_of(path: str) -> Intervener:
    """The open model's :class:`Intervener` (present/absent = the workbench's levels)."""
    return _intervener(path, _stamp(path))


def curves_of(
    path: str, strategies: tuple[str, ...], max_steps: int
) -> dict[str, InterventionCurve]:
    """Intervention curves on the evaluation split (computed once per model and choice)."""
    return _curves(path, _stamp(path), strategies, max_steps)


def maps_of(path: str, case: dict[str, Any], image: np.ndarray, upscale: int) -> CaseMaps:
    """Every concept's activation map over the case's image (computed once per case)."""
    key = f"upload:{case.get('sha256')}" if case["source"] == "upload" else f"eval:{case['index']}"
    return _maps(path, _stamp(path), key, upscale, np.asarray(image))


def model_dir() -> str | None:
    return st.session_state.get("model_dir")


def current_model() -> ConceptBottleneckModel | None:
    """The open model, or ``None`` (with a message) when none is open or it fails."""
    path = model_dir()
    if not path:
        st.info("Open a model on the **Model** page first.")
        return None
    try:
        return _model(path, _stamp(path))
    except CBMError as err:
        st.error(f"Could not open {path}: {err}")
        return None


def current_evaluation() -> EvaluationSplit | None:
    path = model_dir()
    if not path:
        return None
    try:
        return _evaluation(path, _stamp(path))
    except CBMError as err:
        st.error(f"Could not load the evaluation split of {path}: {err}")
        return None


def backbone_of(path: str) -> Any:
    """The open model's backbone (loaded once per model directory)."""
    return _backbone(path, _stamp(path))


def levels_of(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-concept "absent" and "present" score levels of the open model."""
    return _levels(path, _stamp(path))


def open_model(path: str) -> None:
    """Make ``path`` the open model and forget the previous model's case and edits."""
    st.session_state["model_dir"] = path
    for key in ("case", "upload", "edits", "history", "concept_choice", "global_saved"):
        st.session_state.pop(key, None)


# -- the current case ---------------------------------------------------------------------
def set_case(case: dict[str, Any]) -> None:
    """Select the case that the Image and Intervene pages show; edits start afresh."""
    if st.session_state.get("case") != case:
        st.session_state["case"] = case
        st.session_state["edits"] = {}
        st.session_state["history"] = []


def case_scores(split: EvaluationSplit | None) -> tuple[dict[str, Any], np.ndarray] | None:
    """The current case and its original concept scores, or ``None`` if none is chosen."""
    case = st.session_state.get("case")
    if case is None and split is not None and len(split):
        set_case({"source": "evaluation", "index": 0})
        case = st.session_state["case"]
    if case is None:
        return None
    if case["source"] == "upload":
        upload = st.session_state.get("upload")
        if upload is None or upload["sha256"] != case.get("sha256"):
            return None
        return case, upload["scores"]
    if split is None or not 0 <= case["index"] < len(split):
        return None
    return case, split.scores[case["index"]]


def case_image(split: EvaluationSplit | None, case: dict[str, Any]) -> Any:
    if case["source"] == "upload":
        return st.session_state["upload"]["image"]
    if split is not None and split.images is not None:
        return split.images[case["index"]]
    return None


def case_title(model: ConceptBottleneckModel, split: EvaluationSplit | None, case: dict) -> str:
    if case["source"] == "upload":
        return f"uploaded image {case['name']!r}"
    i = case["index"]
    if split is None:
        return f"evaluation image #{i}"
    return f"evaluation image #{i} (true class: {model.class_names[split.labels[i]]})"


def edits() -> dict[int, float]:
    return st.session_state.setdefault("edits", {})


def history() -> list[CaseEdit]:
    return st.session_state.setdefault("history", [])


# -- charts -------------------------------------------------------------------------------
# Vega-Lite specs written as plain dicts and drawn by st.vega_lite_chart: building them
# through altair validates every spec against the JSON schema, which costs 0.1-0.5 s
# per chart on a busy machine and would break the 200 ms budget of an edit.
def _bars(
    df: pd.DataFrame,
    x: dict[str, Any],
    y: str,
    color: dict[str, Any],
    tooltip: list[dict[str, Any]],
    title: str | None = None,
) -> None:
    spec: dict[str, Any] = {
        "mark": {"type": "bar"},
        "height": {"step": 24},
        "encoding": {
            "x": x,
            "y": {
                "field": y,
                "type": "nominal",
                "sort": None,
                "title": None,
                "axis": {"labelLimit": 260},
            },
            "color": color,
            "tooltip": tooltip,
        },
    }
    if title:
        spec["title"] = title
    st.vega_lite_chart(df, spec, width="stretch")


def probability_chart(class_names: tuple[str, ...], proba: np.ndarray, top: int = 8) -> None:
    order = np.argsort(-proba)[:top]
    df = pd.DataFrame(
        {"class": [class_names[k] for k in order], "probability": proba[order].astype(float)}
    )
    _bars(
        df,
        {
            "field": "probability",
            "type": "quantitative",
            "scale": {"domain": [0, 1]},
            "axis": {"format": "%"},
        },
        "class",
        {"value": POSITIVE},
        [{"field": "class"}, {"field": "probability", "format": ".1%"}],
        "Predicted probabilities",
    )


def signed_bars(names: list[str], values: np.ndarray, title: str, value_label: str) -> None:
    """Horizontal bars, positive blue and negative red, in the order given."""
    v = np.asarray(values, float)
    df = pd.DataFrame(
        {"concept": names, value_label: v, "sign": np.where(v >= 0, "positive", "negative")}
    )
    _bars(
        df,
        {"field": value_label, "type": "quantitative"},
        "concept",
        {
            "field": "sign",
            "type": "nominal",
            "legend": None,
            "scale": {"domain": ["positive", "negative"], "range": [POSITIVE, NEGATIVE]},
        },
        [{"field": "concept"}, {"field": value_label, "format": "+.3f"}],
        title,
    )


def weight_matrix(model: ConceptBottleneckModel) -> None:
    """Class x concept heat map of the head's non-zero weights only."""
    w = model.weights
    rows, cols = np.nonzero(w)
    if rows.size == 0:
        st.warning("The head has no non-zero weights: every prediction is the class bias.")
        return
    df = pd.DataFrame(
        {
            "class": [model.class_names[r] for r in rows],
            "concept": [model.bank.concepts[c] for c in cols],
            "weight": w[rows, cols].astype(float),
        }
    )
    lim = float(np.abs(df["weight"]).max())
    used = np.unique(cols)
    spec = {
        "mark": {"type": "rect"},
        "height": {"step": 26},
        "encoding": {
            "x": {
                "field": "concept",
                "type": "nominal",
                "title": None,
                "sort": [model.bank.concepts[c] for c in used],
                "axis": {"labelAngle": -40, "labelLimit": 200},
            },
            "y": {
                "field": "class",
                "type": "nominal",
                "title": None,
                "sort": list(model.class_names),
            },
            "color": {
                "field": "weight",
                "type": "quantitative",
                "scale": {"scheme": "redblue", "domain": [-lim, lim], "reverse": True},
            },
            "tooltip": [
                {"field": "class"},
                {"field": "concept"},
                {"field": "weight", "format": "+.3f"},
            ],
        },
    }
    st.vega_lite_chart(df, spec, width="stretch")


def line_chart(
    rows: list[dict[str, Any]],
    x: tuple[str, str],
    y: tuple[str, str],
    series: str,
    title: str,
    marker: tuple[float, str] | None = None,
    y_format: str = "%",
    dashed: str | None = None,
) -> None:
    """Lines with points, one colour per ``series``; ``marker`` = (x value, tooltip) of a
    dashed vertical rule; the series named ``dashed`` (a baseline) is drawn dashed."""
    x_field, x_title = x
    y_field, y_title = y
    lines: dict[str, Any] = {
        "mark": {"type": "line", "point": True, "interpolate": "linear"},
        "encoding": {
            "x": {
                "field": x_field,
                "type": "quantitative",
                "title": x_title,
                "scale": {"zero": True},
            },
            "y": {
                "field": y_field,
                "type": "quantitative",
                "title": y_title,
                "axis": {"format": y_format},
            },
            "color": {
                "field": series,
                "type": "nominal",
                "title": None,
                "sort": None,
                "scale": {"scheme": "tableau10"},
            },
            "tooltip": [
                {"field": series},
                {"field": x_field, "format": ".2f"},
                {"field": y_field, "format": ".1%" if y_format == "%" else ".3f"},
            ],
        },
    }
    if dashed is not None:
        lines["encoding"]["strokeDash"] = {
            "condition": {"test": f"datum[{series!r}] === {dashed!r}", "value": [5, 4]},
            "value": [1, 0],
        }
    spec: dict[str, Any] = {"title": title, "height": 320, "layer": [lines]}
    if marker is not None:
        spec["layer"].append(
            {
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#555"},
                "encoding": {"x": {"datum": marker[0]}, "tooltip": {"value": marker[1]}},
            }
        )
    st.vega_lite_chart(pd.DataFrame(rows), spec, width="stretch")
