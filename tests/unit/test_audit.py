"""The audit composes the metrics into a report, figures and Markdown, and degrades."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from cbm.audit import AuditData, run_audit
from cbm.audit.markdown import to_markdown
from cbm.concepts.bank import ConceptBank
from cbm.heads.sparse import SparseLinearHead
from cbm.io import write_arrays
from cbm.model import ConceptBottleneckModel

DIM, N_CONCEPTS = 8, 4


def _world(n: int, seed: int):
    """Concept c present <=> embedding has +1 along axis c; class = first two concepts."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, (n, N_CONCEPTS))
    emb = rng.standard_normal((n, DIM)) * 0.3
    emb[:, :N_CONCEPTS] += 2.0 * truth - 1.0
    labels = truth[:, 0] * 2 + truth[:, 1]
    return emb.astype(np.float32), labels, truth


@pytest.fixture(scope="module")
def fitted():
    bank = ConceptBank("toy", tuple(f"c{i}" for i in range(N_CONCEPTS)))
    concept_emb = np.eye(N_CONCEPTS, DIM, dtype=np.float32)
    model = ConceptBottleneckModel(
        bank,
        concept_emb,
        {"backbone_id": "toy", "embed_dim": DIM},
        ("a", "b", "c", "d"),
        SparseLinearHead(target_nec=2.0, search_steps=4),
    )
    emb_tr, y_tr, _ = _world(300, 0)
    emb_te, y_te, truth = _world(200, 1)
    model.fit(emb_tr, y_tr)
    # 2 x 2 grid: the object (concept 0's evidence) sits in the top-left cell
    dense = np.zeros((6, 2, 2, DIM), np.float32)
    dense[:, 0, 0, 0] = 1.0
    dense[:, 1, 1, 1] = 1.0
    masks = np.zeros((6, N_CONCEPTS, 8, 8), bool)
    masks[:, 0, :4, :4] = True
    masks[:, 1, :4, :4] = True  # concept 1 is in the same place, but its map points away
    data = AuditData(emb_tr, y_tr, emb_te, y_te, truth, dense, masks, description="toy")
    return model, data


def test_run_audit_fills_every_section(fitted):
    model, data = fitted
    report = run_audit(model, data, top_k=(1,), mi_Cs=(1.0,), nec_Cs=(0.05, 1.0))
    assert report.task["accuracy"] > 0.9
    assert report.task["effective_concepts_median"] <= 2
    assert report.existence is not None and report.existence[1] > 0.9
    loc = report.localisation
    assert loc is not None
    assert loc["pointing_game"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(loc["pointing_game"].iloc[2])  # no mask for concept 2
    info = report.information
    assert info is not None and info["features"].tolist()[:2] == ["embedding", "concept scores"]
    assert set(report.leakage["scores"]) == {"soft", "binarised", "random"}
    assert not report.skipped
    text = to_markdown(report)
    for heading in ("## Task", "## Localisation", "## Leakage", "## Label information"):
        assert heading in text


def test_run_audit_without_ground_truth_says_what_was_skipped(fitted):
    model, data = fitted
    bare = AuditData(
        data.train_embeddings, data.train_labels, data.test_embeddings, data.test_labels
    )
    report = run_audit(model, bare, top_k=(1,), mi_Cs=(1.0,), nec_Cs=(1.0,))
    assert report.concept_quality is not None and "auroc" not in report.concept_quality
    assert report.localisation is None and "localisation" in report.skipped
    assert "no ground-truth concepts" in to_markdown(report)


def test_cli_audit_without_data_reports_the_model_alone(fitted, tmp_path):
    from cbm.cli import app

    model, _ = fitted
    model.save(tmp_path / "model")
    runner = CliRunner()
    result = runner.invoke(app, ["audit", str(tmp_path / "model"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "a" / "report.md").read_text()
    assert "no --data file was given" in text and "What each class rests on" in text

    write_arrays(tmp_path / "bad.safetensors", {"x": np.zeros(2)})
    args = ["audit", str(tmp_path / "model"), "--data", str(tmp_path / "bad.safetensors")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "lacks train_embeddings" in result.output


@pytest.mark.slow
def test_cli_audit_with_data_file(fitted, tmp_path):
    from cbm.cli import app

    model, data = fitted
    model.save(tmp_path / "model")
    runner = CliRunner()

    write_arrays(
        tmp_path / "data.safetensors",
        {
            "train_embeddings": data.train_embeddings,
            "train_labels": data.train_labels.astype(np.int64),
            "test_embeddings": data.test_embeddings,
            "test_labels": data.test_labels.astype(np.int64),
            "test_concepts": data.test_concepts.astype(np.uint8),
        },
    )
    args = ["audit", str(tmp_path / "model"), "--data", str(tmp_path / "data.safetensors")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "figures" / "accuracy_vs_nec.png").stat().st_size > 1000
    assert "## Concept existence" in (tmp_path / "b" / "report.md").read_text()


def test_world_round_trips_through_the_model_card():
    from cbm.audit.shapes import truth_columns, world_from_config
    from cbm.data.shapes import CONCEPTS, ShapesWorld, Shortcut

    world = ShapesWorld(seed=3, noise=2.0, shortcut=Shortcut("sun", "dark", 0.9))
    again = world_from_config(world.config())
    assert again.config() == world.config()
    a, b = world.sample(5, "test"), again.sample(5, "test")
    np.testing.assert_array_equal(a.images, b.images)
    assert truth_columns((CONCEPTS[3], CONCEPTS[0])).tolist() == [3, 0]
    assert truth_columns(("circle", "a dragon")) is None
