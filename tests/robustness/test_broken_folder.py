"""A folder where 10% of the images are broken: the run finishes, names every bad file,
and the cache keeps the good rows, on a fresh run and on a cache hit alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cbm.backbones.cache import EmbeddingCache
from cbm.backbones.shards import embed_dataset
from cbm.data import ImageDataset, from_folder
from cbm.io import write_arrays


class MeanColour:
    """A deterministic 'backbone' (mean colour per image) that counts its calls."""

    embed_dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return {"backbone_id": "mean-colour", "weights_id": "none:deterministic"}

    def encode_images(self, images: list[Image.Image], batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        x = torch.stack([torch.from_numpy(np.asarray(im, np.float32)) for im in images])
        return x.mean(dim=(1, 2)).numpy()


BAD = {
    "cat/zero.png": lambda good: b"",
    "dog/truncated.png": lambda good: good[: len(good) // 2],
    "dog/text.jpg": lambda good: b"this is a text file with an image extension",
}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i in range(27):
        cls = root / ("cat" if i % 2 else "dog")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(cls / f"{i:02d}.png")
    good = (root / "cat" / "01.png").read_bytes()
    for name, make in BAD.items():
        (root / name).write_bytes(make(good))
    return root


def _report(ds: ImageDataset) -> dict[str, str]:
    return {
        Path(s.path).relative_to(ds.paths[0].parents[1]).as_posix(): s.reason for s in ds.skipped
    }


def test_bad_paths_reported_on_first_run_and_on_cache_hit(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    first_ds = from_folder(folder)
    assert len(first_ds) == 30  # 3 of 30 broken: 10%
    first = embed_dataset(MeanColour(), first_ds, cache, batch_size=4)
    reasons = _report(first_ds)
    assert set(reasons) == set(BAD)
    assert "empty file" in reasons["cat/zero.png"]
    assert "truncated" in reasons["dog/truncated.png"]
    assert "not a readable image" in reasons["dog/text.jpg"]
    bad_rows = [s.row for s in first_ds.skipped]
    assert np.isnan(first[bad_rows]).all()
    good = np.setdiff1d(np.arange(30), bad_rows)
    assert np.isfinite(first[good]).all()

    # second run: a hit that decodes nothing, yet names the same files for the same reasons
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not decode images")

    monkeypatch.setattr(ImageDataset, "iter_batches", no_decoding)
    again_ds, backbone = from_folder(folder), MeanColour()
    again = embed_dataset(backbone, again_ds, cache, batch_size=4)
    assert cache.hits == 1 and backbone.calls == 0
    assert _report(again_ds) == reasons
    assert [s.row for s in again_ds.skipped] == bad_rows
    np.testing.assert_array_equal(again, first)  # good rows kept, bad rows NaN


def test_hit_after_moving_the_folder_names_the_files_where_they_are_now(
    folder: Path, tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    embed_dataset(MeanColour(), from_folder(folder), cache)
    moved = shutil.move(folder, tmp_path / "moved")
    ds = from_folder(moved)
    embed_dataset(MeanColour(), ds, cache)
    assert cache.hits == 1
    assert sorted(s.path for s in ds.skipped) == sorted(str(Path(moved) / n) for n in BAD)


def test_entry_without_a_skip_report_is_a_miss(folder: Path, tmp_path: Path) -> None:
    """An entry from before reports were stored cannot vouch for the bad files: recompute."""
    cache = EmbeddingCache(tmp_path / "cache")
    ds, backbone = from_folder(folder), MeanColour()
    fields = cache.key_fields(backbone.identity(), ds.fingerprint())
    write_arrays(
        cache.path_for(cache.key(fields)),
        {"embeddings": np.zeros((30, 3), np.float32)},
        metadata={"key_fields": json.dumps(fields, sort_keys=True)},
    )
    emb = embed_dataset(backbone, ds, cache)
    assert cache.misses == 1 and backbone.calls > 0 and np.isnan(emb).any()
    assert len(ds.skipped) == 3
