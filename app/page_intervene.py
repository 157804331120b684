"""Intervene: change concepts of the current case and watch the prediction follow."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
import workbench_ui as ui

from cbm.app_edits import (
    CaseEdit,
    edited_scores,
    export_case,
    top_concepts,
    view_case,
)
from cbm.app_global import DEFAULT_STRATEGY, STRATEGY_LABELS, suggest_concepts
from cbm.interventions import STRATEGIES
from cbm.model import ConceptBottleneckModel


def _slider_key(j: int) -> str:
    return f"score_slider_{j}"


def _record(
    model: ConceptBottleneckModel, original: np.ndarray, j: int, value: float, kind: str
) -> None:
    edits = ui.edits()
    before = float(edits.get(j, original[j]))
    edits[j] = float(value)
    ui.history().append(CaseEdit(j, model.bank.concepts[j], kind, before, float(value)))
    st.session_state[_slider_key(j)] = float(value)


def _on_slider(model: ConceptBottleneckModel, original: np.ndarray, j: int) -> None:
    value = float(st.session_state[_slider_key(j)])
    # A slider re-sent at its current value (e.g. when the concept choice changes) is
    # not an edit; only real changes enter the history.
    if abs(value - float(ui.edits().get(j, original[j]))) > 1e-9:
        _record(model, original, j, value, "slider")


def _undo(model: ConceptBottleneckModel, original: np.ndarray, j: int) -> None:
    edits = ui.edits()
    if j in edits:
        ui.history().append(
            CaseEdit(j, model.bank.concepts[j], "restore", edits.pop(j), float(original[j]))
        )
    st.session_state[_slider_key(j)] = float(original[j])


def _reset() -> None:
    for j in list(ui.edits()):
        st.session_state.pop(_slider_key(j), None)
    st.session_state["edits"] = {}
    st.session_state["history"] = []


def _suggest(j: int) -> None:
    st.session_state["concept_choice"] = j


def _editor(
    model: ConceptBottleneckModel, original: np.ndarray, after_scores: np.ndarray, path: str
) -> None:
    absent, present = ui.levels_of(path)
    names = model.bank.concepts
    edits = ui.edits()
    left, right = st.columns([3, 2])
    with right:
        strategy = st.selectbox(
            "Suggest with strategy",
            list(STRATEGIES),
            index=list(STRATEGIES).index(DEFAULT_STRATEGY),
            format_func=lambda s: f"{s.upper()}: {STRATEGY_LABELS[s]}",
            key="suggest_strategy",
        )
        ranked = suggest_concepts(
            ui.intervener_of(path), after_scores, frozenset(edits), strategy, seed=len(edits)
        )
        suggestion = ranked[0].concept if ranked else None
        if not ranked:
            st.info("Every concept the head uses has been checked.")
        else:
            others = ", ".join(f"{r.name} ({r.criterion:.3g})" for r in ranked[1:])
            st.markdown(
                f"Suggested next concept to check: **{ranked[0].name}** "
                f"({strategy.upper()} {ranked[0].criterion:.3g})"
                + (f"; then {others}" if others else "")
            )
            st.button("Check suggested concept", on_click=_suggest, args=(suggestion,))
        st.button("Reset all edits", on_click=_reset)
    with left:
        st.session_state.setdefault("concept_choice", suggestion if suggestion is not None else 0)
        j = st.selectbox(
            "Concept", range(len(names)), format_func=names.__getitem__, key="concept_choice"
        )
    value = float(after_scores[j])
    lo = float(np.floor(min(-4.0, absent[j] - 1.0, original[j], value)))
    hi = float(np.ceil(max(4.0, present[j] + 1.0, original[j], value)))
    st.caption(
        f"original score {original[j]:+.2f}, now {value:+.2f}; "
        f"'absent' = {absent[j]:+.2f}, 'present' = {present[j]:+.2f} "
        "(5th / 95th percentile over the evaluation split)"
    )
    b1, b2, b3 = st.columns(3)
    b1.button(
        "Set present",
        on_click=_record,
        args=(model, original, j, float(present[j]), "present"),
        type="primary",
    )
    b2.button("Set absent", on_click=_record, args=(model, original, j, float(absent[j]), "absent"))
    b3.button(
        "Restore original", on_click=_undo, args=(model, original, j), disabled=j not in edits
    )
    st.session_state.setdefault(_slider_key(j), value)
    st.slider(
        "Score",
        lo,
        hi,
        step=0.05,
        key=_slider_key(j),
        on_change=_on_slider,
        args=(model, original, j),
    )


def render() -> None:
    st.header("Intervene")
    model = ui.current_model()
    path = ui.model_dir()
    if model is None or path is None:
        return
    split = ui.current_evaluation()
    found = ui.case_scores(split)
    if found is None:
        st.info("Pick an evaluation image or upload one on the Image view page.")
        return
    case, original = found
    before = view_case(model, original)
    after = view_case(model, edited_scores(original, ui.edits()))
    st.caption(f"Editing a copy of the concept scores of {ui.case_title(model, split, case)}.")
    c_img, c_before, c_after = st.columns([1, 1, 1])
    image = ui.case_image(split, case)
    if image is not None:
        c_img.image(image, width=160)
    c_before.metric(
        "Before edits",
        model.class_names[before.predicted],
        f"p = {before.proba[before.predicted]:.1%}",
        delta_color="off",
    )
    changed = "changed" if after.predicted != before.predicted else "unchanged"
    c_after.metric(
        "After edits",
        model.class_names[after.predicted],
        f"p = {after.proba[after.predicted]:.1%} ({changed})",
        delta_color="off",
    )
    _editor(model, original, after.scores, path)
    chart_left, chart_right = st.columns(2)
    with chart_left:
        ui.probability_chart(model.class_names, after.proba)
    with chart_right:
        contrib = after.contributions(model, after.predicted)
        idx = top_concepts(contrib, 12, nonzero_only=True)
        if idx.size:
            ui.signed_bars(
                [model.bank.concepts[j] for j in idx],
                contrib[idx],
                f"Contributions to {model.class_names[after.predicted]} after edits",
                "contribution",
            )
    hist = ui.history()
    st.subheader(f"History ({len(hist)} edits)")
    if hist:
        st.table(
            [
                {
                    "concept": h.name,
                    "how": h.kind,
                    "from": round(h.before, 3),
                    "to": round(h.after, 3),
                }
                for h in hist
            ]
        )
    record = export_case(
        model,
        path,
        case,
        original,
        hist,
        ui.edits(),
        strategy=st.session_state.get("suggest_strategy", DEFAULT_STRATEGY),
    )
    st.download_button(
        "Export edited case (JSON)",
        json.dumps(record, indent=2),
        file_name="cbm-edited-case.json",
        mime="application/json",
    )
