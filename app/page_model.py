"""Model page: open a saved model directory and read its card."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import workbench_ui as ui

from cbm.app_support import is_model_dir, list_model_dirs, model_card


def _chooser() -> None:
    st.text_input(
        "Folder with saved models",
        key="models_root",
        help="Model directories (config.json + model.safetensors) at or below this folder "
        "are listed.",
    )
    root = st.session_state["models_root"]
    found = list_model_dirs(root)
    col_list, col_path = st.columns(2)
    with col_list:
        if found:
            choice = st.selectbox(
                f"{len(found)} model(s) under {root}",
                [str(p) for p in found],
                key="model_choice",
            )
            if st.button("Open selected model", type="primary"):
                ui.open_model(choice)
        else:
            st.info(f"No saved model directories under `{root}`.")
    with col_path:
        typed = st.text_input("... or a model directory path", key="model_path")
        if st.button("Open path") and typed:
            if is_model_dir(typed):
                ui.open_model(str(Path(typed)))
            else:
                st.error(
                    f"`{typed}` is not a saved cbm model: it needs config.json (kind "
                    "concept_bottleneck_model) and model.safetensors."
                )


def render() -> None:
    st.header("Model")
    _chooser()
    path = ui.model_dir()
    if not path:
        st.info("Choose a model to see its card.")
        return
    model = ui.current_model()
    if model is None:
        return
    card = model_card(model, path)
    st.subheader(f"Model card: `{path}`")
    st.table(
        {"field": [r[0] for r in card.summary_rows()], "value": [r[1] for r in card.summary_rows()]}
    )
    if card.accuracy is not None and card.random_control_accuracy is not None:
        gain = card.accuracy - card.random_control_accuracy
        st.caption(
            f"The concept bank beats the same head on {card.n_concepts} random directions "
            f"by {gain:+.1%} accuracy at comparable NEC."
        )
    with st.expander("Concept bank provenance"):
        st.json(card.provenance or {"provenance": "not recorded"})
    with st.expander("What each class rests on (non-zero head weights)"):
        for name, concepts in model.concepts_per_class().items():
            text = ", ".join(f"{c} {w:+.2f}" for c, w in concepts) or "bias only"
            st.markdown(f"**{name}**: {text}")
    with st.expander("Training record and metrics"):
        st.json({"training": card.training, "metrics": card.metrics})
    split = ui.current_evaluation()
    if split is None:
        st.warning(
            "This model has no evaluation split the workbench can load (no "
            "evaluation.safetensors and no regenerable shapes world); upload images on "
            "the Image view page."
        )
    else:
        st.success(f"Evaluation split: {split.source}; accuracy here {split.accuracy():.1%}.")
