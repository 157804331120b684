"""Global view: what the head uses, and edits of the head saved as new models."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import workbench_ui as ui

from cbm.app_edits import global_edit_effect, remove_concepts, save_edited_model
from cbm.exceptions import CBMError


def render() -> None:
    st.header("Global view")
    model = ui.current_model()
    path = ui.model_dir()
    if model is None or path is None:
        return
    w = model.weights
    st.subheader(f"Class x concept weights (non-zero only; NEC {model.nec:.2f})")
    ui.weight_matrix(model)
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
