"""Sharded embedding extraction on a Ray cluster (extra ``[scale]``).

A thin adapter: Ray Data deals shard indices to a pool of actors, each of which builds
its backbone once (on its own GPU when ``num_gpus`` is given) and calls
:func:`~cbm.backbones.shards.extract_shard` for every index it receives. The shard
files and ``index.json`` are exactly those of ``cbm embed``: a Ray run, a Slurm array
and a single process can resume, check or load each other's output. Shards already on
disk are not recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cbm.backbones.shards import ShardResult, extract_shard, refresh_index
from cbm.exceptions import ConfigurationError


class ShardWorker:
    """A Ray Data callable class: one backbone per actor, one shard per row.

    Parameters
    ----------
    make_backbone
        Builds the backbone inside the worker (a picklable callable, e.g.
        ``functools.partial(open_backbone, "ViT-B-16", "openai", "cuda")``).
    dataset, out_dir, num_shards, batch_size
        As for :func:`~cbm.backbones.shards.extract_shard`.
    """

    def __init__(
        self,
        make_backbone: Callable[[], Any],
        dataset: Any,
        out_dir: str | Path,
        num_shards: int,
        batch_size: int,
    ) -> None:
        self.backbone = make_backbone()
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.num_shards = num_shards
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed the shards named in ``batch["shard_index"]``; one result row each."""
        results = [
            extract_shard(
                self.backbone, self.dataset, self.out_dir, self.num_shards, int(i), self.batch_size
            )
            for i in batch["shard_index"]
        ]
        return {
            "shard_index": np.array([r.shard_index for r in results], np.int64),
            "file": np.array([r.path.name for r in results]),
            "start": np.array([r.rows[0] for r in results], np.int64),
            "stop": np.array([r.rows[1] for r in results], np.int64),
            "computed": np.array([r.computed for r in results]),
            "skipped": np.array([json.dumps(r.skipped) for r in results]),
        }


def extract_with_ray(
    make_backbone: Callable[[], Any],
    dataset: Any,
    out_dir: str | Path,
    num_shards: int,
    batch_size: int = 64,
    concurrency: int = 1,
    num_gpus: float = 0.0,
    shard_indices: Sequence[int] | None = None,
) -> list[ShardResult]:
    """Run :func:`~cbm.backbones.shards.extract_shard` for many shards as Ray actors.

    Parameters
    ----------
    make_backbone
        Picklable zero-argument callable that builds the backbone in each actor.
    dataset
        The dataset; its fingerprint is computed once here, not in every actor
        (hashing an image folder reads every file).
    out_dir
        Shard folder shared by all workers (a shared filesystem on a multi-node cluster).
    num_shards
        Shards the data is cut into (more shards than actors balances the load).
    batch_size
        Images per forward pass; part of the shard key.
    concurrency
        Number of actors (e.g. the number of GPUs in the cluster).
    num_gpus
        GPUs per actor (``1`` for one GPU each; ``0`` on CPU).
    shard_indices
        Only these shards (default: all).

    Returns
    -------
    list of ShardResult
        One per shard in index order, with ``computed=False`` for shards found on disk
        and the skipped images of the shards computed now.

    Call ``ray.init(...)`` first to join a cluster; otherwise Ray starts a local one.
    """
    indices = list(range(num_shards)) if shard_indices is None else list(shard_indices)
    if num_shards < 1 or any(not 0 <= i < num_shards for i in indices):
        raise ConfigurationError(
            f"shard indices must lie in [0, {num_shards}) for {num_shards} shards, got {indices}"
        )
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    try:
        import ray
    except ImportError as err:
        raise ConfigurationError(
            "the Ray adapter needs Ray Data: pip install -e '.[scale]' in the cbm checkout"
        ) from err
    dataset.fingerprint()  # cached on image folders, shipped to the actors with the dataset
    items = ray.data.from_items([{"shard_index": i} for i in indices])
    done = items.map_batches(
        ShardWorker,
        fn_constructor_args=(make_backbone, dataset, str(out_dir), num_shards, batch_size),
        batch_size=1,
        batch_format="numpy",
        concurrency=concurrency,
        num_gpus=num_gpus or None,
    ).take_all()
    refresh_index(out_dir)  # workers that finished together may each have missed another
    results = [
        ShardResult(
            int(row["shard_index"]),
            Path(out_dir) / str(row["file"]),
            (int(row["start"]), int(row["stop"])),
            bool(row["computed"]),
            json.loads(str(row["skipped"])),
        )
        for row in done
    ]
    return sorted(results, key=lambda r: r.shard_index)
