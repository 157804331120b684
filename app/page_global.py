"""Global view: what the head uses, and edits of the head saved as new models."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import workbench_ui as ui

from cbm.app_edits import global_edit_effect, remove_concepts, save_edited_model
from cbm.app_global import STRATEGY_LABELS, curve_rows, nec_path
from cbm.exceptions import CBMError
from cbm.interventions import STRATEGIES, curves_table
from cbm.model import ConceptBottleneckModel

CURVE_STEPS = 20


def _nec_curve(model: ConceptBottleneckModel) -> None:
    st.subheader("Accuracy vs NEC (the head's regularisation path)")
    path = nec_path(model)
    if path is None:
        st.info(
            "No regularisation path is recorded for this model: models saved before cbm "
            "stored it in config.json (`head.path`) and globally edited heads have none. "
            "Re-fit and save the model (e.g. `cbm demo`) to see the curve."
        )
        return
    ui.line_chart(
        path.rows(),
        ("nec", "NEC (non-zero weights per class)"),
        ("accuracy", "accuracy"),
        "split",
        "Accuracy at each solved point of the path",
        marker=(path.chosen_nec, f"this model (NEC {path.chosen_nec:.2f})"),
    )
    test = model.metrics.get("test_accuracy")
    extra = "" if test is None else f"; its test accuracy is {float(test):.1%}"
    st.caption(
        f"{len(path.nec)} points from the strongest to the weakest penalty: accuracy on "
        "the head's training scores (and on its validation data where the fit had any). "
        f"The dashed line marks the saved head, NEC {path.chosen_nec:.2f}{extra}."
        + (
            " This head was fitted at one fixed C, so the path stops at it; a NEC-targeted "
            "fit (`cbm demo`) records the whole path."
            if len(path.nec) < 4
            else ""
        )
    )


def _intervention_curves(model: ConceptBottleneckModel, path: str) -> None:
    st.subheader("Intervention curves (evaluation split)")
    split = ui.current_evaluation()
    if split is None:
        st.info("No evaluation split: intervention curves need one.")
        return
    if split.concepts is None:
        st.info(
            "The evaluation split has no ground-truth concepts, so an expert's answers "
            "cannot be simulated: curves need shapes-world concepts or a `concepts` array "
            "in evaluation.safetensors (`cbm.app_support.save_evaluation(..., concepts=)`)."
        )
        return
    left, right = st.columns([3, 1])
    with left:
        chosen = st.multiselect(
            "Strategies",
            list(STRATEGIES),
            default=list(STRATEGIES),
            format_func=lambda s: f"{s.upper()}: {STRATEGY_LABELS[s]}",
            key="curve_strategies",
        )
    with right:
        n_units = len(model.bank)
        steps = int(
            st.number_input(
                "Interventions per image",
                min_value=1,
                max_value=n_units,
                value=min(CURVE_STEPS, n_units),
                key="curve_steps",
            )
        )
    if not chosen:
        st.caption("Choose at least one strategy.")
        return
    order = tuple(s for s in STRATEGIES if s in chosen)
    curves = ui.curves_of(path, order, steps)
    ui.line_chart(
        curve_rows({s.upper(): c for s, c in curves.items()}),
        ("interventions", "concepts intervened per image"),
        ("error", "task error"),
        "strategy",
        f"Task error as concepts are set to their true values ({len(split)} images)",
        dashed="RAND",
    )
    table = curves_table(curves)
    st.table(
        [
            {
                "strategy": r["strategy"].upper(),
                "error before": f"{r['error_0']:.1%}",
                f"error after {steps}": f"{r['error_end']:.1%}",
                "AUC (lower is better)": round(r["auc"], 4),
                "steps to halve the error": (
                    "not within these steps"
                    if r["steps_to_reduce"] is None
                    else str(r["steps_to_reduce"])
                ),
            }
            for r in table
        ]
    )
    st.caption(
        "Each step sets one more concept per image to its 'present' / 'absent' level (the "
        "Intervene page's 95th / 5th percentiles) according to the truth, in the order the "
        "strategy picks (`cbm.interventions`, Shin et al. 2023); RAND is the mean of 5 "
        "random orders; at concept level UCP and LCP rank alike, so their curves coincide. "
        "AUC is over the steps shown. A curve that rises means true answers hurt this "
        "head: it leans on the backbone's imperfect concept scores."
    )


def render() -> None:
    st.header("Global view")
    model = ui.current_model()
    path = ui.model_dir()
    if model is None or path is None:
        return
    w = model.weights
    st.subheader(f"Class x concept weights (non-zero only; NEC {model.nec:.2f})")
    ui.weight_matrix(model)
    _nec_curve(model)
    _intervention_curves(model, path)
    st.subheader("Remove concepts from the head")
    used = [int(j) for j in (w != 0).any(axis=0).nonzero()[0]]
    chosen = st.multiselect(
        "Concepts to remove (the head stops using them; scores are still shown)",
        used,
        format_func=model.bank.concepts.__getitem__,
        key="global_remove",
    )
    if not chosen:
        st.caption("Choose concepts to see the accuracy change on the evaluation split.")
        return
    edited = remove_concepts(model, chosen)
    split = ui.current_evaluation()
    effect = None
    if split is None:
        st.warning("No evaluation split: the accuracy change cannot be measured.")
    else:
        effect = global_edit_effect(model, edited, split.scores, split.labels)
        a, b, c = st.columns(3)
        a.metric(
            "Accuracy after edit",
            f"{effect.accuracy_after:.1%}",
            f"{effect.accuracy_after - effect.accuracy_before:+.1%}",
        )
        b.metric(
            "NEC after edit",
            f"{effect.nec_after:.2f}",
            f"{effect.nec_after - effect.nec_before:+.2f}",
            delta_color="off",
        )
        c.metric("Predictions changed", f"{effect.changed_predictions} of {len(split)}")
    default = f"{Path(path).name}-without-" + "-".join(
        model.bank.concepts[j].replace(" ", "_") for j in chosen[:3]
    )
    target = st.text_input(
        "Save the edited model as", str(Path(path).parent / default), key="global_target"
    )
    if st.button("Save as new model", type="primary"):
        try:
            out = save_edited_model(edited, path, target, effect)
        except (CBMError, OSError) as err:
            st.error(f"Not saved: {err}")
        else:
            st.session_state["global_saved"] = str(out)
    saved = st.session_state.get("global_saved")
    if saved:
        st.success(f"Saved the edited model to `{saved}` (the original is unchanged).")
        st.button("Open the edited model", on_click=ui.open_model, args=(saved,))
