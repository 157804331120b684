"""Every workbench page driven through Streamlit's AppTest (no browser, no server)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit", reason="the workbench tests need the [app] extra")
from streamlit.testing.v1 import AppTest  # noqa: E402
from workbench_models import find_flip  # noqa: E402

from cbm.app_support import load_evaluation  # noqa: E402
from cbm.model import ConceptBottleneckModel  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app" / "workbench.py")


def _app(model_dir: Path | None = None, root: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if root is not None:
        at.session_state["models_root"] = str(root)
    if model_dir is not None:
        at.session_state["model_dir"] = str(model_dir)
    return at.run()


def _page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, at.exception
    return at


def test_model_page_lists_opens_and_describes_a_model(synthetic_dir: Path) -> None:
    at = _app(root=synthetic_dir.parent)
    assert not at.exception
    assert at.selectbox(key="model_choice").value == str(synthetic_dir)
    at.button[0].click().run()
    assert at.session_state["model_dir"] == str(synthetic_dir)
    card = at.table[0].value
    fields = dict(zip(card["field"], card["value"], strict=True))
    model = ConceptBottleneckModel.load(synthetic_dir)
    assert fields["NEC (non-zero weights per class)"] == f"{model.nec:.2f}"
    assert "synthetic" in fields["concept bank"]
    assert any("Evaluation split" in s.value for s in at.success)


def test_model_page_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    at = _app(root=tmp_path)
    at.text_input(key="model_path").set_value(str(tmp_path)).run()
    at.button[-1].click().run()
    assert "model_dir" not in at.session_state
    assert "is not a saved cbm model" in at.error[0].value


def test_image_view_filters_and_picks_an_image(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Image view")
    split = load_evaluation(ConceptBottleneckModel.load(synthetic_dir), synthetic_dir)
    assert split is not None
    at.radio(key="filter_outcome").set_value("wrong").run()
    wrong = np.flatnonzero(~split.correct)
    assert at.selectbox(key="image_choice").options == [str(i) for i in wrong] or list(
        at.selectbox(key="image_choice").options
    )
    pick = int(wrong[-1])
    at.selectbox(key="image_choice").set_value(pick).run()
    assert at.session_state["case"] == {"source": "evaluation", "index": pick}
    assert f"#{pick}" in at.subheader[0].value
    predicted = ConceptBottleneckModel.load(synthetic_dir).class_names[split.predicted[pick]]
    assert at.metric[0].value == predicted


def test_corrupt_upload_gets_a_clear_message(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Image view")
    at.file_uploader(key="upload_file").upload("broken.png", b"\x89PNG\r\n\x1a\n garbage").run()
    assert not at.exception
    assert "Upload refused" in at.error[0].value and "broken.png" in at.error[0].value


def test_intervene_changes_the_prediction_resets_and_exports(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Image view")
    split = load_evaluation(ConceptBottleneckModel.load(synthetic_dir), synthetic_dir)
    assert split is not None
    index, (j, how, new_class) = next(
        (i, f) for i in range(len(split)) if (f := find_flip(synthetic_dir, i)) is not None
    )
    at.selectbox(key="image_choice").set_value(index).run()
    _page(at, "Intervene")
    before = at.metric[0].value
    at.selectbox(key="concept_choice").set_value(j).run()
    next(b for b in at.button if b.label == f"Set {how}").click().run()
    assert at.metric[1].value == new_class != before
    assert "changed" in at.metric[1].delta
    assert "History (1 edits)" in [s.value for s in at.subheader]
    assert at.get("download_button")[0].label == "Export edited case (JSON)"
    # A slider edit is recorded too, then reset restores the original prediction.
    at.slider(key=f"score_slider_{j}").set_value(0.0).run()
    assert len(at.session_state["history"]) == 2
    next(b for b in at.button if b.label == "Reset all edits").click().run()
    assert at.metric[1].value == before and at.session_state["edits"] == {}


def test_suggest_selects_a_concept(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Intervene")
    next(b for b in at.button if b.label == "Check suggested concept").click().run()
    chosen = at.selectbox(key="concept_choice").value
    model = ConceptBottleneckModel.load(synthetic_dir)
    assert any(model.bank.concepts[chosen] in m.value for m in at.markdown)


def test_global_edit_shows_the_accuracy_change_and_saves(synthetic_dir: Path, tmp_path) -> None:
    at = _page(_app(synthetic_dir), "Global view")
    model = ConceptBottleneckModel.load(synthetic_dir)
    used = int(np.flatnonzero((model.weights != 0).any(0))[0])
    at.multiselect(key="global_remove").set_value([used]).run()
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["Accuracy after edit", "NEC after edit"]
    target = tmp_path / "edited"
    at.text_input(key="global_target").set_value(str(target)).run()
    next(b for b in at.button if b.label == "Save as new model").click().run()
    assert not at.error and (target / "config.json").is_file()
    back = ConceptBottleneckModel.load(target)
    assert (back.weights[:, used] == 0).all()
    assert ConceptBottleneckModel.load(synthetic_dir).nec == model.nec


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_shapes_model_regenerates_its_split_and_embeds_a_good_upload(shapes_dir: Path) -> None:
    at = _app(shapes_dir)
    assert any("shapes world, test split (120 images)" in s.value for s in at.success)
    _page(at, "Image view")
    model = ConceptBottleneckModel.load(shapes_dir)
    split = load_evaluation(model, shapes_dir)
    assert split is not None and split.images is not None
    sure = np.flatnonzero(split.correct & (split.proba.max(1) > 0.8))
    k = int(sure[0])
    at.file_uploader(key="upload_file").upload("shape.png", _png(split.images[k]), "image/png")
    at.run()
    assert not at.exception and not at.error
    assert "uploaded image 'shape.png'" in at.subheader[0].value
    assert at.metric[0].value == model.class_names[split.labels[k]]
    # The uploaded case is what the Intervene page edits.
    _page(at, "Intervene")
    assert at.metric[0].value == model.class_names[split.labels[k]]
    assert any("uploaded image 'shape.png'" in c.value for c in at.caption)


@pytest.mark.slow
def test_demo_model_card_shows_accuracy_beside_the_random_control(demo_dir: Path) -> None:
    at = _app(demo_dir)
    card = at.table[0].value
    fields = dict(zip(card["field"], card["value"], strict=True))
    model = ConceptBottleneckModel.load(demo_dir)
    control = model.metrics["random_control"]
    assert fields["test accuracy"] == f"{model.metrics['test_accuracy']:.1%}"
    assert fields["same head on random directions (control)"].startswith(
        f"{control['accuracy']:.1%}"
    )
    assert "open_clip:shapes-clip-rn" in fields["backbone"]


def _charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def test_global_view_draws_the_nec_path_and_intervention_curves(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Global view")
    heads = [s.value for s in at.subheader]
    assert "Accuracy vs NEC (the head's regularisation path)" in heads
    assert "Intervention curves (evaluation split)" in heads
    assert not at.info, [i.value for i in at.info]
    # Weight matrix, NEC path, intervention curves.
    assert len(_charts(at)) == 3
    model = ConceptBottleneckModel.load(synthetic_dir)
    assert any(f"NEC {model.nec:.2f}" in c.value for c in at.caption)
    table = at.table[0].value
    assert list(table["strategy"]) == ["RAND", "UCP", "LCP", "CCTP", "ECTP", "EUDTP"]
    at.multiselect(key="curve_strategies").set_value(["cctp", "ectp"]).run()
    assert list(at.table[0].value["strategy"]) == ["CCTP", "ECTP"]


def test_global_view_explains_a_model_without_path_or_truth(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """A model saved before the path was recorded, with a split without concepts."""
    import json

    from cbm.app_support import save_evaluation
    from cbm.io import read_arrays

    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((synthetic_dir / "config.json").read_text())
    del config["head"]["path"]
    (old / "config.json").write_text(json.dumps(config))
    (old / "model.safetensors").write_bytes((synthetic_dir / "model.safetensors").read_bytes())
    arrays = read_arrays(synthetic_dir / "evaluation.safetensors")
    save_evaluation(old, arrays["embeddings"], arrays["labels"], arrays["images"])
    at = _page(_app(old), "Global view")
    notes = " ".join(i.value for i in at.info)
    assert "No regularisation path is recorded" in notes
    assert "no ground-truth concepts" in notes
    assert len(_charts(at)) == 1  # the weight matrix only


def test_suggestion_follows_the_chosen_strategy(synthetic_dir: Path) -> None:
    from cbm.app_edits import concept_levels
    from cbm.app_global import suggest_concepts, workbench_intervener

    model = ConceptBottleneckModel.load(synthetic_dir)
    split = load_evaluation(model, synthetic_dir)
    assert split is not None
    absent, present = concept_levels(split.scores, len(model.bank))
    iv = workbench_intervener(model, absent, present, split.scores.mean(axis=0))
    at = _page(_app(synthetic_dir), "Intervene")
    assert at.selectbox(key="suggest_strategy").value == "ectp"
    seen = {}
    for strategy in ("ectp", "cctp", "ucp"):
        at.selectbox(key="suggest_strategy").set_value(strategy).run()
        expected = suggest_concepts(iv, split.scores[0], frozenset(), strategy)[0]
        text = next(m.value for m in at.markdown if "Suggested next concept" in m.value)
        assert f"**{expected.name}**" in text and strategy.upper() in text
        next(b for b in at.button if b.label == "Check suggested concept").click().run()
        assert at.selectbox(key="concept_choice").value == expected.concept
        seen[strategy] = expected.concept
    # After an edit the suggestion moves on to an unchecked concept; the export names
    # the strategy.
    next(b for b in at.button if b.label == "Set present").click().run()
    text = next(m.value for m in at.markdown if "Suggested next concept" in m.value)
    assert f"**{model.bank.concepts[seen['ucp']]}**" not in text
    assert "History (1 edits)" in [s.value for s in at.subheader]


def test_image_view_notes_that_synthetic_embeddings_give_no_map(synthetic_dir: Path) -> None:
    at = _page(_app(synthetic_dir), "Image view")
    assert "Concept activation map" in [s.value for s in at.subheader]
    assert any(
        "No concept activation map for this model" in i.value and "backbone" in i.value
        for i in at.info
    )


def test_image_view_draws_the_activation_map_of_the_tiny_clip(shapes_dir: Path) -> None:
    at = _page(_app(shapes_dir), "Image view")
    assert not at.info and not at.error
    model = ConceptBottleneckModel.load(shapes_dir)
    chosen = at.selectbox(key="map_concept").value
    assert any(f"'{model.bank.concepts[chosen]}'" in c for c in _image_captions(at))
    assert any("2 x 2 grid of per-location scores" in c.value for c in at.caption)
    at.radio(key="map_upscale").set_value(2).run()
    assert any("4 x 4 grid of per-location scores" in c.value for c in at.caption)


def _image_captions(at: AppTest) -> list[str]:
    return [c for im in at.get("image") for c in im.captions]
