"""The README's first command, end to end on the shipped tiny CLIP (small sizes)."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cbm.backbones import OpenCLIPBackbone
from cbm.cli import app
from cbm.data import ShapesWorld
from cbm.model import ConceptBottleneckModel

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    args = [
        "demo",
        "--out",
        str(root / "model"),
        "--n-train",
        "900",
        "--n-test",
        "450",
        "--device",
        "cpu",
        "--cache-dir",
        str(root / "cache"),
        "--json",
        str(root / "r.json"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return root, result.output, json.loads((root / "r.json").read_text()), args


def test_demo_report_is_consistent(demo_run):
    _, output, report, _ = demo_run
    assert report["nec"] <= report["target_nec"] == 5.0
    assert report["random_control_nec"] <= 5.0
    # the concept bottleneck beats the random-concept control by a clear margin and is
    # within reach of the linear probe on raw embeddings
    assert report["test_accuracy"] >= report["random_control_accuracy"] + 0.05
    assert report["test_accuracy"] >= report["linear_probe_accuracy"] - 0.05
    assert min(report["concept_auroc"].values()) > 0.9
    # at tighter budgets the concepts' meaning matters more: the bank's lead grows
    assert [row["target_nec"] for row in report["tighter_budgets"]] == [2.0, 3.0]
    for row in report["tighter_budgets"]:
        assert row["nec"] <= row["target_nec"] and row["random_control_nec"] <= row["target_nec"]
        assert row["accuracy"] >= row["random_control_accuracy"] + 0.05
    flat = " ".join(output.split())
    assert "random directions (control)" in flat and "saved model to" in flat


def test_saved_demo_model_reloads_with_identical_predictions(demo_run):
    root, _, report, _ = demo_run
    model = ConceptBottleneckModel.load(root / "model")
    world = ShapesWorld(**{k: v for k, v in model.training["world"].items() if k in ("seed",)})
    test = world.sample(200, "test")
    emb = OpenCLIPBackbone(device="cpu").encode_images(test.images)
    again = ConceptBottleneckModel.load(root / "model")
    np.testing.assert_array_equal(model.predict(emb), again.predict(emb))
    assert model.metrics["test_accuracy"] == report["test_accuracy"]
    assert model.metrics["random_control"]["accuracy"] == report["random_control_accuracy"]


def test_second_run_is_served_from_the_cache(demo_run):
    root, _, _, args = demo_run
    result = runner.invoke(app, [*args[:-2], "--out", str(root / "model2")])
    assert result.exit_code == 0, result.output
    assert "2 of 2 embedding sets from cache" in " ".join(result.output.split())


def test_explain_names_concepts_and_skips_bad_files(demo_run, tmp_path):
    root, _, _, _ = demo_run
    batch = ShapesWorld(seed=0).sample(2, "files")
    paths = []
    for i, im in enumerate(batch.images):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = runner.invoke(
        app,
        ["explain", str(root / "model"), *paths, str(tmp_path / "broken.png"), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "skipped" in flat and "broken.png" in flat
    assert result.output.count("because:") == 2


def test_explain_on_a_non_model_directory_fails_clearly(tmp_path):
    result = runner.invoke(app, ["explain", str(tmp_path), "x.png"])
    assert result.exit_code == 1
    assert "config.json does not exist" in " ".join(result.output.split())
