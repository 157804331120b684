"""The workbench's Global-view and suggestion logic: NEC path, curves, strategies, maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cbm.app_edits import concept_levels, remove_concepts
from cbm.app_global import (
    curve_rows,
    nec_path,
    split_intervention_curves,
    suggest_concepts,
    workbench_intervener,
)
from cbm.app_maps import case_concept_maps, maps_unavailable, overlay
from cbm.app_support import load_evaluation, save_evaluation
from cbm.exceptions import ArtefactError, ConfigurationError, ValidationError
from cbm.interventions import STRATEGIES, intervention_curves
from cbm.model import ConceptBottleneckModel

sys.path.insert(0, str(Path(__file__).parents[1] / "app"))
from workbench_models import synthetic_model_dir, tiny_shapes_model  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_model_dir(tmp_path_factory.mktemp("g") / "a")


def _intervener(model: ConceptBottleneckModel, scores: np.ndarray):  # type: ignore[no-untyped-def]
    absent, present = concept_levels(scores, len(model.bank))
    return workbench_intervener(model, absent, present, scores.mean(axis=0))


def test_saved_model_keeps_its_regularisation_path(saved: Path, tmp_path: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    path = nec_path(model)
    assert path is not None and path.nec.size >= 2
    assert path.nec[0] <= path.nec[-1] and path.chosen_nec == pytest.approx(model.nec)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in path.rows())
    # The saved head is the last point of its path (a fixed-C fit walks down to it).
    assert path.nec[-1] == pytest.approx(model.nec)
    # A model saved before the path was stored (no head.path) still loads, without one.
    config = json.loads((saved / "config.json").read_text())
    assert "path" in config["head"]
    old = tmp_path / "old"
    old.mkdir()
    del config["head"]["path"]
    (old / "config.json").write_text(json.dumps(config))
    (old / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    back = ConceptBottleneckModel.load(old)
    assert nec_path(back) is None
    np.testing.assert_array_equal(back.weights, model.weights)
    # A malformed path record is a clear artefact error, not a crash.
    config["head"]["path"] = {"nec": ["many"]}
    (old / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtefactError, match="head.path"):
        ConceptBottleneckModel.load(old)


def test_a_global_edit_drops_the_parents_path(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    used = int(np.flatnonzero((model.weights != 0).any(0))[0])
    assert nec_path(remove_concepts(model, [used])) is None
    assert nec_path(model) is not None


@pytest.mark.parametrize("strategy", ["cctp", "ectp", "eudtp", "ucp"])
def test_suggestion_follows_the_strategy_and_skips_edited(saved: Path, strategy: str) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None
    iv = _intervener(model, split.scores)
    case = split.scores[3]
    # The strategy's own ranking (public Intervener.select, no answers: ranked once).
    order = iv.select(case[None], strategy, len(model.bank)).order[0]
    used = set(np.flatnonzero((model.weights != 0).any(0)).tolist())
    expected = [int(j) for j in order if int(j) in used]
    edited: set[int] = set()
    while ranked := suggest_concepts(iv, case, frozenset(edited), strategy, top=2):
        remaining = [j for j in expected if j not in edited]
        assert [r.concept for r in ranked] == remaining[:2]
        edited.add(ranked[0].concept)
    assert edited == used


def test_strategies_can_disagree(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None
    iv = _intervener(model, split.scores)
    firsts = {
        s: tuple(
            suggest_concepts(iv, split.scores[i], frozenset(), s)[0].concept for i in range(20)
        )
        for s in ("cctp", "ectp", "ucp")
    }
    assert len(set(firsts.values())) > 1
    with pytest.raises(ValidationError, match="unknown strategy"):
        suggest_concepts(iv, split.scores[0], frozenset(), "best")


def test_curves_match_the_interventions_api_and_stop_at_max_steps(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    split = load_evaluation(model, saved)
    assert split is not None and split.concepts is not None
    iv = _intervener(model, split.scores)
    k = len(model.bank)
    full = split_intervention_curves(
        iv, split.scores, split.labels, split.concepts, ("cctp", "ectp"), max_steps=k
    )
    reference = intervention_curves(
        iv, split.scores, split.labels, iv.values.targets(split.concepts), ("cctp", "ectp")
    )
    for s in ("cctp", "ectp"):
        np.testing.assert_allclose(full[s].errors, reference[s].errors)
        assert full[s].errors[0] == pytest.approx(1 - split.accuracy())
    short = split_intervention_curves(
        iv, split.scores, split.labels, split.concepts, STRATEGIES, max_steps=3
    )
    assert set(short) == set(STRATEGIES)
    assert all(c.errors.shape == (4,) for c in short.values())
    np.testing.assert_allclose(short["ectp"].errors, full["ectp"].errors[:4])
    # True answers fix the class-defining concepts: no error once all are set.
    assert full["ectp"].errors[-1] <= full["ectp"].errors[0]
    assert full["ectp"].errors[-1] == 0.0
    assert len(curve_rows(short)) == 6 * 4


def test_evaluation_concepts_round_trip_and_are_checked(tmp_path: Path) -> None:
    emb = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    truth = np.eye(5, 3, dtype=np.uint8)
    save_evaluation(tmp_path, emb, np.arange(5), concepts=truth)
    from cbm.io import read_arrays

    np.testing.assert_array_equal(
        read_arrays(tmp_path / "evaluation.safetensors")["concepts"], truth
    )
    with pytest.raises(ValidationError, match="concepts must be 0/1"):
        save_evaluation(tmp_path, emb, np.arange(5), concepts=np.full((5, 3), 2))


def test_maps_are_unavailable_without_patch_tokens(saved: Path) -> None:
    model = ConceptBottleneckModel.load(saved)
    reason = maps_unavailable(model, object())
    assert reason is not None and "patch tokens" in reason
    with pytest.raises(ConfigurationError, match="no concept activation map"):
        case_concept_maps(model, object(), np.zeros((8, 8, 3), np.uint8))


def test_overlay_marks_the_strongest_cell() -> None:
    image = np.full((8, 8, 3), 128, np.uint8)
    out = overlay(image, np.array([[0.0, 0.0], [0.0, 2.0]]))
    assert out.shape == image.shape and out.dtype == np.uint8
    # Bottom-right (strongest) is yellow-ish, top-left (weakest) blue-ish.
    assert out[7, 7, 0] > out[0, 0, 0] and out[0, 0, 2] > out[7, 7, 2]


@pytest.mark.slow
def test_tiny_clip_maps_point_at_the_shape() -> None:
    """On the shapes world, a present shape concept's map peaks on the shape."""
    from threadpoolctl import threadpool_limits

    from cbm.backbones import OpenCLIPBackbone
    from cbm.backbones.tiny_clip import WEIGHTS_PATH
    from cbm.data.shapes import CONCEPTS, ShapesWorld
    from cbm.metrics.localisation import pointing_game, upsample_maps

    if not WEIGHTS_PATH.is_file():
        pytest.skip(f"the shipped tiny-CLIP weights are missing ({WEIGHTS_PATH})")
    world = ShapesWorld(seed=0)
    backbone = OpenCLIPBackbone(device="cpu")
    model = tiny_shapes_model(backbone, world, n_train=100, max_iter=50)
    bank = model.bank
    with threadpool_limits(limits=1):
        assert maps_unavailable(model, backbone) is None
        test = world.sample(12, "test", masks=True)
        assert test.masks is not None
        maps = np.stack([case_concept_maps(model, backbone, im).values for im in test.images])
    assert maps.shape == (12, len(bank), 2, 2)
    cols = [CONCEPTS.index(c) for c in bank.concepts]
    size = test.images.shape[1]
    hits = pointing_game(upsample_maps(maps, size), test.masks[:, cols])
    shapes = [i for i, c in enumerate(bank.concepts) if c in ("circle", "square")]
    assert np.nanmean(hits[shapes]) >= 0.75  # chance on a 2 x 2 grid is about 0.25
