"""Image view: browse the evaluation split or upload an image, and read one decision."""

from __future__ import annotations

import numpy as np
import streamlit as st
import workbench_ui as ui

from cbm.app_edits import top_concepts, view_case
from cbm.app_maps import maps_unavailable, overlay
from cbm.app_support import UPLOAD_EXTENSIONS, EvaluationSplit, embed_upload, read_upload
from cbm.exceptions import CBMError
from cbm.model import ConceptBottleneckModel

GALLERY = 16
MAX_OPTIONS = 2000


def _filtered(model: ConceptBottleneckModel, split: EvaluationSplit) -> np.ndarray:
    c1, c2, c3, c4 = st.columns([2, 1.3, 2, 1])
    with c1:
        classes = st.multiselect("True class", list(model.class_names), key="filter_classes")
    with c2:
        outcome = st.radio(
            "Prediction", ["all", "correct", "wrong"], horizontal=True, key="filter_outcome"
        )
    with c3:
        concept = st.selectbox(
            "Concept present (score at least)",
            ["any", *model.bank.concepts],
            key="filter_concept",
        )
    with c4:
        threshold = st.number_input("min score", value=1.0, step=0.25, key="filter_threshold")
    keep = np.ones(len(split), dtype=bool)
    if classes:
        keep &= np.isin(split.labels, [model.class_names.index(c) for c in classes])
    if outcome != "all":
        keep &= split.correct if outcome == "correct" else ~split.correct
    if concept != "any":
        keep &= split.scores[:, model.bank.concepts.index(concept)] >= threshold
    return np.flatnonzero(keep)


def _browse(model: ConceptBottleneckModel, split: EvaluationSplit) -> None:
    matches = _filtered(model, split)
    st.caption(f"{matches.size} of {len(split)} evaluation images match ({split.source}).")
    if matches.size == 0:
        return
    if split.images is not None:
        cols = st.columns(8)
        for n, i in enumerate(matches[:GALLERY]):
            mark = "ok" if split.correct[i] else "wrong"
            cols[n % 8].image(
                split.images[i],
                caption=f"#{i} {model.class_names[split.predicted[i]]} ({mark})",
                width="stretch",
            )

    def label(i: int) -> str:
        mark = "correct" if split.correct[i] else "WRONG"
        return (
            f"#{i}: true {model.class_names[split.labels[i]]}, "
            f"predicted {model.class_names[split.predicted[i]]} ({mark})"
        )

    options = [int(i) for i in matches[:MAX_OPTIONS]]
    case = st.session_state.get("case") or {}
    current = (
        case.get("index")
        if case.get("source") == "evaluation"
        else st.session_state.get("image_choice_seen")
    )
    choice = st.selectbox(
        "Image to inspect",
        options,
        index=options.index(current) if current in options else 0,
        format_func=label,
        key="image_choice",
    )
    # A new choice (not a page revisit, which restores the current case) selects the case.
    if choice != st.session_state.get("image_choice_seen"):
        st.session_state["image_choice_seen"] = choice
        ui.set_case({"source": "evaluation", "index": int(choice)})


def _upload(path: str) -> None:
    file = st.file_uploader(
        "... or upload an image (embedded with the model's backbone)",
        type=list(UPLOAD_EXTENSIONS),
        key="upload_file",
    )
    if file is None:
        return
    try:
        upload = read_upload(file.name, file.getvalue(), max_bytes=ui.max_upload_bytes())
    except CBMError as err:
        st.error(f"Upload refused: {err}")
        return
    known = st.session_state.get("upload")
    if known is None or known["sha256"] != upload.sha256:
        try:
            with st.spinner("Embedding the upload ..."):
                emb = embed_upload(ui.backbone_of(path), upload)
            model = ui.current_model()
            if model is None:
                return
            scores = model.concept_scores(emb)[0]
        except CBMError as err:
            st.error(f"Could not embed {upload.name!r}: {err}")
            return
        st.session_state["upload"] = {
            "sha256": upload.sha256,
            "name": upload.name,
            "image": np.asarray(upload.image),
            "scores": scores,
        }
        ui.set_case({"source": "upload", "name": upload.name, "sha256": upload.sha256})
    st.caption(f"Uploaded {upload.name!r}: {upload.width} x {upload.height} pixels.")


def _activation_map(
    model: ConceptBottleneckModel, path: str, case: dict, image: np.ndarray | None, default: int
) -> None:
    st.subheader("Concept activation map")
    if image is None:
        st.info("No image is stored for this case (only its embedding), so no map.")
        return
    try:
        reason = maps_unavailable(model, ui.backbone_of(path))
    except CBMError as err:
        reason = f"its backbone could not be opened ({err})"
    if reason is not None:
        st.info(f"No concept activation map for this model: {reason}.")
        return
    c1, c2 = st.columns([3, 2])
    with c1:
        concept = st.selectbox(
            "Concept to locate",
            range(len(model.bank)),
            index=default,
            format_func=lambda j: model.bank.concepts[j],
            key="map_concept",
        )
    with c2:
        upscale = st.radio(
            "Grid",
            [1, 2],
            format_func=lambda u: "native" if u == 1 else "2x finer (enlarged input)",
            horizontal=True,
            key="map_upscale",
        )
    try:
        maps = ui.maps_of(path, case, np.asarray(image), int(upscale))
    except CBMError as err:
        st.error(f"Could not compute the map: {err}")
        return
    values = maps.values[concept]
    left, mid, right = st.columns([1, 1, 2])
    left.image(image, caption="image", width=200)
    mid.image(
        overlay(np.asarray(image), values),
        caption=f"'{model.bank.concepts[concept]}' (yellow = strongest)",
        width=200,
    )
    gh, gw = maps.grid
    cells = "; ".join(" ".join(f"{v:+.2f}" for v in values[r]) for r in range(gh))
    right.caption(
        f"{gh} x {gw} grid of per-location scores (same scale as the concept score): "
        f"{cells}. Each cell is the backbone's embedding of that image region compared "
        "with the concept's text embedding; colours are scaled to this map's own range. "
        "The finer grid enlarges the image, which the tiny CLIP was not trained at, so "
        "it localises worse (docs/metrics.md)."
    )


def _inspect(model: ConceptBottleneckModel, split: EvaluationSplit | None, path: str) -> None:
    found = ui.case_scores(split)
    if found is None:
        st.info("Pick an evaluation image or upload one.")
        return
    case, scores = found
    view = view_case(model, scores)
    pred = model.class_names[view.predicted]
    st.subheader(f"Inspecting {ui.case_title(model, split, case)}")
    left, right = st.columns([1, 2])
    with left:
        image = ui.case_image(split, case)
        if image is not None:
            st.image(image, width=224)
        st.metric("Prediction", pred, f"p = {view.proba[view.predicted]:.1%}", delta_color="off")
    with right:
        ui.probability_chart(model.class_names, view.proba)
    n_show = min(20, len(model.bank))
    shown = top_concepts(view.scores, n_show)
    ui.signed_bars(
        [model.bank.concepts[j] for j in shown],
        view.scores[shown],
        f"Concept activations (top {n_show} by |score|, standardised)",
        "score",
    )
    ranked = [int(k) for k in np.argsort(-view.proba) if k != view.predicted]
    alt_cls = st.selectbox(
        "Compare with class",
        ranked,
        format_func=lambda k: f"{model.class_names[k]} (p = {view.proba[k]:.1%})",
        key="alternative_class",
    )
    cols = st.columns(2)
    for col, cls in zip(cols, (view.predicted, alt_cls), strict=True):
        contrib = view.contributions(model, cls)
        idx = top_concepts(contrib, 15, nonzero_only=True)
        with col:
            if idx.size == 0:
                st.info(f"No concept contributes to {model.class_names[cls]}.")
                continue
            ui.signed_bars(
                [model.bank.concepts[j] for j in idx],
                contrib[idx],
                f"Contributions to {model.class_names[cls]} (bias {model.bias[cls]:+.2f})",
                "contribution",
            )
    most_present = int(np.argmax(view.scores))
    _activation_map(model, path, case, ui.case_image(split, case), most_present)
    if split is not None and split.images is not None:
        _top_images(model, split, int(top_concepts(view.scores, 1)[0]))


def _top_images(model: ConceptBottleneckModel, split: EvaluationSplit, default: int) -> None:
    concept = st.selectbox(
        "Top evaluation images for concept",
        range(len(model.bank)),
        index=default,
        format_func=lambda j: model.bank.concepts[j],
        key="top_concept",
    )
    best = top_concepts(split.scores[:, concept] - split.scores[:, concept].min(), 8)
    cols = st.columns(8)
    for col, i in zip(cols, best, strict=False):
        col.image(
            split.images[i] if split.images is not None else None,
            caption=f"#{i} score {split.scores[i, concept]:+.2f}",
            width="stretch",
        )


def render() -> None:
    st.header("Image view")
    model = ui.current_model()
    path = ui.model_dir()
    if model is None or path is None:
        return
    split = ui.current_evaluation()
    if split is None:
        st.warning("No evaluation split for this model; upload an image below.")
    else:
        _browse(model, split)
    _upload(path)
    _inspect(model, split, path)
