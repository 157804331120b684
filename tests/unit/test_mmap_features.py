"""Shards -> one memory-mapped feature file -> heads and SAEs, with bounded RAM."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conv_backbone import ConvBackbone
from PIL import Image

from cbm.backbones.mmap_features import consolidate_shards, map_rows, open_features, write_npy
from cbm.backbones.shards import extract_shard, load_shards
from cbm.concepts.sae import SparseAutoencoder
from cbm.data import ArrayDataset, from_folder
from cbm.exceptions import ArtefactError, ValidationError
from cbm.heads.sparse import SparseLinearHead
from cbm.io import write_json
from cbm.scores.cosine import CosineConceptScorer


def _folder(root: Path, n: int = 40, broken: tuple[int, ...] = (5, 23, 31, 38)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = root / ("dark" if i % 2 else "light")
        cls.mkdir(parents=True, exist_ok=True)
        if i in broken:
            (cls / f"{i:02d}.png").write_bytes(b"\x89PNG not really")
            continue
        base = 60 if i % 2 else 190
        pixels = np.clip(rng.normal(base, 30, (12, 12, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(cls / f"{i:02d}.png")
    return root


def test_consolidated_file_holds_the_readable_rows_in_order(tmp_path: Path) -> None:
    ds = from_folder(_folder(tmp_path / "img"))
    for i in (2, 0, 1):
        extract_shard(ConvBackbone(), ds, tmp_path / "emb", 3, i, batch_size=4)
    whole = load_shards(tmp_path / "emb")
    feats = consolidate_shards(tmp_path / "emb", chunk_rows=5)  # several chunks per shard
    X = feats.open()
    assert isinstance(X, np.memmap) and not X.flags.writeable
    good = np.flatnonzero(np.isfinite(whole).all(axis=1))
    assert len(good) == 36  # 4 of 40 files are broken
    np.testing.assert_array_equal(feats.rows, good)
    np.testing.assert_array_equal(np.asarray(X), whole[good])
    assert not list((tmp_path / "emb").glob(".*tmp"))
    again = consolidate_shards(tmp_path / "emb")  # reused, not rewritten
    assert again.path == feats.path
    assert again.path.stat().st_mtime_ns == feats.path.stat().st_mtime_ns


def test_a_changed_run_gets_its_own_file(tmp_path: Path) -> None:
    ds = from_folder(_folder(tmp_path / "img", n=12, broken=()))
    extract_shard(ConvBackbone(seed=0), ds, tmp_path / "a", 1, 0, batch_size=4)
    extract_shard(ConvBackbone(seed=1), ds, tmp_path / "b", 1, 0, batch_size=4)
    fa, fb = consolidate_shards(tmp_path / "a"), consolidate_shards(tmp_path / "b")
    assert fa.path.name != fb.path.name
    assert not np.array_equal(np.asarray(fa.open()), np.asarray(fb.open()))


def test_stale_index_from_concurrent_workers_is_rebuilt_from_the_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ds = ArrayDataset(rng.integers(0, 256, (30, 12, 12, 3), np.uint8), np.zeros(30), ("a",), "r")
    out = tmp_path / "emb"
    for i in range(3):
        extract_shard(ConvBackbone(), ds, out, 3, i, batch_size=4)
    index = (out / "index.json").read_text()
    import json

    stale = json.loads(index)
    del stale["shards"]["1"], stale["shards"]["2"]  # the last writer saw only its own shard
    stale["complete"] = False
    write_json(out / "index.json", stale)
    np.testing.assert_array_equal(load_shards(out), ConvBackbone().encode_images(ds.images))
    assert json.loads((out / "index.json").read_text())["complete"] is True


def test_head_and_sae_fit_from_the_memmap_as_from_ram(tmp_path: Path) -> None:
    ds = from_folder(_folder(tmp_path / "img"))
    extract_shard(ConvBackbone(), ds, tmp_path / "emb", 2, 0, batch_size=4)
    extract_shard(ConvBackbone(), ds, tmp_path / "emb", 2, 1, batch_size=4)
    feats = consolidate_shards(tmp_path / "emb")
    X, y = feats.open(), ds.labels[feats.rows]
    ram = np.asarray(X).copy()
    kw = {"target_nec": 3, "selection": "nec", "chunk_rows": 7}
    streamed = SparseLinearHead(**kw).fit(X, y)
    resident = SparseLinearHead(**kw).fit(ram, y)
    np.testing.assert_allclose(streamed.coef_, resident.coef_, atol=1e-4)
    assert streamed.score(ram, y) == resident.score(ram, y) > 0.9  # light vs dark
    sae = dict(n_latents=16, k=2, batch_size=8, max_steps=20, device="cpu", n_threads=1)
    a = SparseAutoencoder(**sae).fit(X)
    b = SparseAutoencoder(**sae).fit(ram)
    np.testing.assert_allclose(a.W_dec_, b.W_dec_, atol=1e-4)


def test_map_rows_streams_concept_scores(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(50, 16)).astype(np.float32)
    src = open_features(write_npy(iter([emb[:20], emb[20:]]), 50, tmp_path / "emb.npy"))
    scorer = CosineConceptScorer(rng.normal(size=(6, 16))).fit(emb)
    scores = map_rows(src, scorer.transform, tmp_path / "scores.npy", chunk_rows=7)
    assert isinstance(scores, np.memmap) and scores.shape == (50, 6)
    np.testing.assert_allclose(scores, scorer.transform(emb), rtol=1e-5, atol=1e-5)


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    def dying():
        yield np.zeros((4, 3), np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_npy(dying(), 8, tmp_path / "x.npy")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValidationError, match="expected 8 rows in all, got 4"):
        write_npy(iter([np.zeros((4, 3))]), 8, tmp_path / "x.npy")
    with pytest.raises(ValidationError, match=r"does not fit rows 4\.\."):
        write_npy(iter([np.zeros((4, 3)), np.zeros((4, 2))]), 8, tmp_path / "x.npy")
    assert list(tmp_path.iterdir()) == []


def test_pickled_npy_is_refused_unexecuted(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # would run on unpickling
            return (Path(tmp_path / "pwned").touch, ())

    np.save(tmp_path / "evil.npy", np.array([[Boom()]], dtype=object), allow_pickle=True)
    with pytest.raises(ArtefactError, match="not a numeric .npy"):
        open_features(tmp_path / "evil.npy")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "p.npy").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ArtefactError, match="not a numeric .npy"):
        open_features(tmp_path / "p.npy")
