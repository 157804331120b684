from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from workbench_models import synthetic_model_dir, tiny_shapes_model  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _private_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tests' embeddings out of the user's cache (servers inherit this)."""
    old = os.environ.get("CBM_CACHE_DIR")
    os.environ["CBM_CACHE_DIR"] = str(tmp_path_factory.mktemp("embedding-cache"))
    yield
    if old is None:
        os.environ.pop("CBM_CACHE_DIR", None)
    else:
        os.environ["CBM_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_model_dir(tmp_path_factory.mktemp("models") / "synthetic")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shapes-world model on the shipped tiny CLIP whose test split the app regenerates.

    One head fit at a fixed C (no NEC search) keeps this cheap enough for the default
    lane; ``demo_dir`` is the full ``cbm demo`` pipeline.
    """
    from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images
    from cbm.backbones.tiny_clip import WEIGHTS_PATH

    if not WEIGHTS_PATH.is_file():
        pytest.skip(f"the shipped tiny-CLIP weights are missing ({WEIGHTS_PATH})")
    from cbm.data.shapes import ShapesWorld

    world = ShapesWorld(seed=0)
    backbone = OpenCLIPBackbone(device="cpu")
    model = tiny_shapes_model(backbone, world, n_train=400, max_iter=200)
    # Embedded through the cache, so the app's regeneration of this split is a cache hit.
    test = world.sample(120, "test")
    emb_test = embed_images(backbone, test.images, EmbeddingCache())
    accuracy = float((model.predict(emb_test) == test.labels).mean())
    model.metrics = {
        "dataset": "shapes world (seed 0)",
        "nec": model.nec,
        "test_accuracy": accuracy,
    }
    model.training = {
        "dataset": "shapes",
        "world": world.config(),
        "n_train": 400,
        "n_test": 120,
        "split_train": "train",
        "split_test": "test",
    }
    return model.save(tmp_path_factory.mktemp("models") / "shapes")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model ``cbm demo`` makes, at a smaller size (slow tests only)."""
    from cbm.pipeline import run_demo

    out = tmp_path_factory.mktemp("models") / "demo"
    run_demo(out, n_train=600, n_test=300, device="cpu", progress=False)
    return out
