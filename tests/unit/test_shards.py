"""Sharded extraction: equals unsharded bitwise, resumes after a kill, never serves stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conv_backbone import ConvBackbone
from PIL import Image

from cbm.backbones.shards import extract_shard, load_shards, shard_rows
from cbm.data import ArrayDataset, from_folder
from cbm.exceptions import ArtefactError, ConfigurationError
from cbm.io import read_arrays


@pytest.fixture()
def data() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (53, 12, 12, 3), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 3, 53), ("a", "b", "c"), "rand")


def test_shard_rows_tile_the_data_on_batch_boundaries() -> None:
    for n, bs, k in [(53, 8, 3), (10, 4, 5), (7, 64, 2), (0, 4, 2)]:
        rows = [shard_rows(n, bs, k, i) for i in range(k)]
        assert rows[0][0] == 0 and rows[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:], strict=False))
        assert all(start % bs == 0 or start == n for start, _ in rows)
    with pytest.raises(ConfigurationError, match="shard index"):
        shard_rows(10, 4, 2, 2)


def test_sharded_equals_unsharded_exactly(tmp_path: Path, data: ArrayDataset) -> None:
    bb = ConvBackbone()
    extract_shard(bb, data, tmp_path / "one", 1, 0, batch_size=8)
    for i in (2, 0, 1, 3):  # any order, as independent workers would finish
        extract_shard(bb, data, tmp_path / "four", 4, i, batch_size=8)
    whole, sharded = load_shards(tmp_path / "one"), load_shards(tmp_path / "four")
    assert whole.shape == (53, 32)
    np.testing.assert_array_equal(whole, sharded)


def test_killed_run_resumes_without_recomputing(tmp_path: Path, data: ArrayDataset) -> None:
    out = tmp_path / "run"
    dying = ConvBackbone(fail_after=3)  # batches of 8: shards of 2 batches; dies in shard 1
    with pytest.raises(KeyboardInterrupt):
        for i in range(4):
            extract_shard(dying, data, out, 4, i, batch_size=8)
    assert len(list(out.glob("shard-*.safetensors"))) == 1  # no half-written shard
    assert not list(out.glob(".*tmp"))
    with pytest.raises(ArtefactError, match="not finished"):
        load_shards(out)
    fresh = ConvBackbone()
    results = [extract_shard(fresh, data, out, 4, i, batch_size=8) for i in range(4)]
    assert [r.computed for r in results] == [False, True, True, True]
    assert fresh.calls == 7 - 2  # 7 batches in all, the finished shard's 2 not redone
    again = ConvBackbone()
    assert not any(extract_shard(again, data, out, 4, i, 8).computed for i in range(4))
    assert again.calls == 0
    other = ConvBackbone(seed=1)  # other weights: other key, recomputed, never mixed up
    changed = extract_shard(other, data, out, 4, 0, 8)
    assert changed.computed and changed.path != results[0].path and results[0].path.is_file()
    stored = read_arrays(changed.path)["embeddings"]
    np.testing.assert_array_equal(stored, other.encode_images(data.images[:16]))


def test_image_folder_shards_report_skipped_files(tmp_path: Path) -> None:
    for i in range(5):
        img = Image.fromarray(np.full((12, 12, 3), i * 40, np.uint8))
        (tmp_path / "x" / "c").mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / "x" / "c" / f"{i}.png")
    (tmp_path / "x" / "c" / "5.png").write_bytes(b"")
    ds = from_folder(tmp_path / "x")
    res = [extract_shard(ConvBackbone(), ds, tmp_path / "o", 2, i, batch_size=2) for i in (0, 1)]
    emb = load_shards(tmp_path / "o")
    assert emb.shape == (6, 32)
    assert np.isnan(emb[5]).all() and np.isfinite(emb[:5]).all()
    assert res[1].skipped[0]["path"].endswith("5.png")


def test_dataset_fingerprint_keys_the_embedding_cache(tmp_path: Path) -> None:
    from cbm.backbones.cache import EmbeddingCache
    from cbm.backbones.shards import embed_dataset

    (tmp_path / "x" / "c").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((12, 12, 3), i * 60, np.uint8)).save(
            tmp_path / "x" / "c" / f"{i}.png"
        )
    (tmp_path / "x" / "c" / "3.png").write_bytes(b"broken")
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_dataset(ConvBackbone(), from_folder(tmp_path / "x"), cache, batch_size=2)
    assert np.isnan(first[3]).all() and cache.misses == 1
    bb = ConvBackbone()
    again = embed_dataset(bb, from_folder(tmp_path / "x"), cache)
    np.testing.assert_array_equal(first, again)
    assert cache.hits == 1 and bb.calls == 0
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "x" / "c" / "2.png")
    changed = embed_dataset(bb, from_folder(tmp_path / "x"), cache)
    assert cache.misses == 2 and not np.array_equal(changed[2], first[2])
