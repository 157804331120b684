"""The Ray Data adapter writes the very shard files of an unsharded run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conv_backbone import ConvBackbone

from cbm.backbones.ray_shards import ShardWorker, extract_with_ray
from cbm.backbones.shards import extract_shard, load_shards
from cbm.data import ArrayDataset
from cbm.exceptions import ConfigurationError


@pytest.fixture()
def data() -> ArrayDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (45, 12, 12, 3), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 3, 45), ("a", "b", "c"), "rand")


def test_shard_worker_embeds_the_shards_it_is_given(tmp_path: Path, data: ArrayDataset) -> None:
    worker = ShardWorker(ConvBackbone, data, tmp_path / "ray", 3, 8)
    first = worker({"shard_index": np.array([2, 0])})
    assert first["shard_index"].tolist() == [2, 0] and first["computed"].all()
    assert first["start"].tolist() == [32, 0] and first["stop"].tolist() == [45, 16]
    again = worker({"shard_index": np.array([0, 1])})
    assert again["computed"].tolist() == [False, True]  # shard 0 found on disk
    extract_shard(ConvBackbone(), data, tmp_path / "one", 1, 0, batch_size=8)
    np.testing.assert_array_equal(load_shards(tmp_path / "ray"), load_shards(tmp_path / "one"))


def test_bad_shard_indices_are_refused_before_ray_starts(data: ArrayDataset) -> None:
    with pytest.raises(ConfigurationError, match=r"lie in \[0, 3\)"):
        extract_with_ray(ConvBackbone, data, "unused", 3, shard_indices=[3])


@pytest.mark.slow  # about 25 s: starting a local Ray cluster and its Data executor
def test_one_local_ray_worker_equals_unsharded_extraction(
    tmp_path: Path, data: ArrayDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    # the actor unpickles ConvBackbone by module name: let it find this folder
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        done = extract_with_ray(ConvBackbone, data, tmp_path / "ray", 4, batch_size=8)
        rerun = extract_with_ray(ConvBackbone, data, tmp_path / "ray", 4, batch_size=8)
    finally:
        ray.shutdown()
    assert [r.shard_index for r in done] == [0, 1, 2, 3] and all(r.computed for r in done)
    assert not any(r.computed for r in rerun)
    extract_shard(ConvBackbone(), data, tmp_path / "one", 1, 0, batch_size=8)
    np.testing.assert_array_equal(load_shards(tmp_path / "ray"), load_shards(tmp_path / "one"))
    assert sorted(p.name for p in (tmp_path / "ray").glob("shard-*")) == sorted(
        r.path.name for r in done
    )
