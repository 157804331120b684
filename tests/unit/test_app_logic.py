"""The workbench's non-UI logic: model listing, uploads, case and global edits."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbm.app_edits import (
    concept_levels,
    edited_scores,
    export_case,
    global_edit_effect,
    remove_concepts,
    save_edited_model,
    top_concepts,
    view_case,
)
from cbm.app_support import (
    list_model_dirs,
    load_evaluation,
    model_card,
    read_upload,
    shapes_world_kwargs,
)
from cbm.data.shapes import ShapesWorld, Shortcut
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.model import ConceptBottleneckModel

sys.path.insert(0, str(Path(__file__).parents[1] / "app"))
from workbench_models import synthetic_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_model_dir(tmp_path_factory.mktemp("m") / "models" / "a")


def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_list_model_dirs_finds_models_and_ignores_other_folders(saved: Path) -> None:
    root = saved.parent.parent
    (root / "not-a-model").mkdir(exist_ok=True)
    (root / "not-a-model" / "config.json").write_text('{"kind": "something else"}')
    assert list_model_dirs(root) == [saved]
    assert list_model_dirs(root / "missing") == []


def test_model_card_reports_accuracy_beside_the_random_control(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    card = dict(model_card(model, saved).summary_rows())
    assert card["NEC (non-zero weights per class)"] == f"{model.nec:.2f}"
    assert (
        "%" in card["test accuracy"]
        and "at NEC" in card["same head on random directions (control)"]
    )


def test_stored_evaluation_split_matches_the_model(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None and split.images is not None
    np.testing.assert_array_equal(split.predicted, model.predict(split.embeddings))
    assert 0.5 < split.accuracy() <= 1.0


def test_world_config_round_trips_to_the_same_images() -> None:
    world = ShapesWorld(seed=3, shortcut=Shortcut("sun"))
    config = json.loads(json.dumps(world.config()))
    again = ShapesWorld(**shapes_world_kwargs(config))
    np.testing.assert_array_equal(again.sample(5, "test").images, world.sample(5, "test").images)


def test_read_upload_accepts_images_and_refuses_the_rest() -> None:
    up = read_upload("red.png", _png())
    assert (up.width, up.height) == (40, 30) and up.image.mode == "RGB"
    with pytest.raises(ValidationError, match="not a valid image"):
        read_upload("notes.png", b"this is not an image at all")
    with pytest.raises(ValidationError, match="truncated or corrupt"):
        read_upload("cut.png", _png((200, 200))[:300])
    with pytest.raises(ValidationError, match="limited to"):
        read_upload("big.png", _png(), max_bytes=10)
    with pytest.raises(ValidationError, match="pixels"):
        read_upload("wide.png", _png((300, 300)), max_pixels=10_000)
    with pytest.raises(ValidationError, match="empty"):
        read_upload("empty.png", b"")


def test_case_edits_work_on_a_copy_and_can_flip_the_prediction(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None
    original = split.scores[0].copy()
    before = view_case(model, original)
    absent, present = concept_levels(split.scores, len(model.bank))
    assert (absent < present).all()
    # Push up the concept with the largest weight on another class: its logit rises.
    other = int(np.argsort(-before.proba)[1])
    j = int(np.argmax(model.weights[other] - model.weights[before.predicted]))
    after = view_case(model, edited_scores(original, {j: 50.0}))
    assert after.predicted == other
    np.testing.assert_array_equal(split.scores[0], original)
    with pytest.raises(ValidationError):
        edited_scores(original, {len(model.bank): 1.0})


def test_top_concepts_orders_by_magnitude() -> None:
    v = np.array([0.1, -3.0, 0.0, 2.0])
    assert top_concepts(v, 2).tolist() == [1, 3]
    assert top_concepts(v, 10, nonzero_only=True).tolist() == [1, 3, 0]


def test_export_records_edits_and_both_predictions(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    scores = model.concept_scores(np.ones((1, 32)))[0]
    record = export_case(
        model, str(saved), {"source": "evaluation", "index": 0}, scores, [], {1: 2.5}
    )
    json.dumps(record)
    assert record["edits"] == [{"concept": "concept 1", "index": 1, "value": 2.5}]
    assert record["prediction_before"]["class"] in model.class_names


def test_global_edit_copies_the_model_and_saves_a_new_directory(
    saved: Path, tmp_path: Path
) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None
    coef = model.head.coef_.copy()
    used = int(np.flatnonzero((model.weights != 0).any(0))[0])
    edited = remove_concepts(model, [used])
    np.testing.assert_array_equal(model.head.coef_, coef)
    assert (edited.weights[:, used] == 0).all() and edited.nec < model.nec
    effect = global_edit_effect(model, edited, split.scores, split.labels)
    assert effect.accuracy_before == pytest.approx(split.accuracy())
    out = save_edited_model(edited, saved, tmp_path / "edited", effect)
    back = ConceptBottleneckModel.load(out)
    assert back.metrics["test_accuracy"] == effect.accuracy_after
    assert back.training["global_edits"] == [{"removed_concepts": [model.bank.concepts[used]]}]
    assert (out / "evaluation.safetensors").is_file()
    with pytest.raises(ConfigurationError, match="never overwrites"):
        save_edited_model(edited, saved, out, effect)
    with pytest.raises(ConfigurationError):
        remove_concepts(model, [])
