"""``cbm intervene`` on a real shapes-world model with the shipped tiny CLIP."""

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images, tiny_clip
from cbm.cli import app
from cbm.concepts import ConceptBank
from cbm.data import ShapesWorld
from cbm.heads import SparseLinearHead
from cbm.model import ConceptBottleneckModel

pytestmark = pytest.mark.skipif(
    not Path(tiny_clip.WEIGHTS_PATH).is_file(), reason="the tiny CLIP weights are not shipped"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("intervene")
    backbone = OpenCLIPBackbone(device="cpu")
    world = ShapesWorld(seed=0)
    train = world.sample(300, "train")
    cache = EmbeddingCache(root / "cache")
    bank = ConceptBank.load("shapes")
    model = ConceptBottleneckModel(
        bank,
        backbone.encode_texts(bank.prompts),
        backbone.identity(),
        world.class_names,
        SparseLinearHead(target_nec=5),
    ).fit(embed_images(backbone, train.images, cache), train.labels)
    model.training = {"dataset": "shapes", "world": world.config(), "n_train": 300}
    model.save(root / "model")
    return root


def test_split_mode_prints_errors_per_strategy(model_dir, monkeypatch):
    monkeypatch.setenv("CBM_CACHE_DIR", str(model_dir / "cache"))
    result = CliRunner().invoke(
        app,
        [
            "intervene",
            str(model_dir / "model"),
            "--n",
            "120",
            "--noise",
            "25",
            "--strategy",
            "all",
            "--budget",
            "3",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("rand", "ucp", "lcp", "cctp", "ectp", "eudtp"):
        assert name in result.output
    out = " ".join(result.output.split())
    assert "error before" in out and "120 images" in out


def test_image_mode_applies_edits_and_names_the_questions(model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("CBM_CACHE_DIR", str(model_dir / "cache"))
    batch = ShapesWorld(seed=0).sample(1, "test")
    path = tmp_path / "shape.png"
    Image.fromarray(batch.images[0]).save(path)
    result = CliRunner().invoke(
        app,
        [
            "intervene",
            str(model_dir / "model"),
            str(path),
            str(tmp_path / "missing.png"),
            "--strategy",
            "ectp",
            "--budget",
            "2",
            "--set",
            "star=present",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # undo rich's line wrapping
    assert "ectp would ask about" in out
    assert "before -> after" in out
    assert "skipped" in out and "missing.png" in out
