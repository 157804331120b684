"""Embedding extraction in deterministic, content-keyed, resumable shards.

A dataset of ``n`` images is cut into ``ceil(n / batch_size)`` batches, and the batches
are dealt out to ``num_shards`` contiguous shards. Because every batch holds the same
images whether the run is sharded or not, the concatenated shards are *bitwise* equal
to an unsharded extraction on the same kind of device with the same thread count (the
key does not record threads: a different CPU thread count changes the last bits). Each
shard is written atomically to a file whose name carries a hash of everything that
determines it (backbone identity with its weights hash and preprocessing, dataset
content fingerprint, shard layout, batch size, cbm version), so:

* any launcher can run shards (a Slurm array, ``torchrun`` ranks, Ray tasks): each
  worker calls :func:`extract_shard` with its own index and writes one file;
* a killed run restarts where it stopped: a shard whose file exists with the same key
  is not recomputed, and a half-written shard never exists;
* a changed backbone or dataset can never be served stale shards.

``index.json`` lists the finished shards; :func:`load_shards` checks that all are
present and returns the rows in dataset order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

import cbm
from cbm.backbones.cache import EmbeddingCache
from cbm.data.images import SkippedImage
from cbm.exceptions import ArtefactError, ConfigurationError
from cbm.io import SCHEMA_VERSION, read_arrays, read_json, write_arrays, write_json


def shard_rows(n: int, batch_size: int, num_shards: int, shard_index: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``shard_index``; starts are multiples of ``batch_size``."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ConfigurationError(
            f"shard index must lie in [0, {num_shards}) for {num_shards} shards, got {shard_index}"
        )
    if batch_size < 1:
        raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
    n_batches = -(-n // batch_size)
    per, extra = divmod(n_batches, num_shards)
    first = shard_index * per + min(shard_index, extra)
    last = first + per + (1 if shard_index < extra else 0)
    return min(first * batch_size, n), min(last * batch_size, n)


@dataclass
class ShardResult:
    """What one call of :func:`extract_shard` did."""

    shard_index: int
    path: Path
    rows: tuple[int, int]
    computed: bool
    skipped: list[dict[str, str]] = field(default_factory=list)


def _key_fields(
    backbone: Any, dataset: Any, num_shards: int, shard_index: int, batch_size: int
) -> dict[str, Any]:
    return {
        "backbone": backbone.identity(),
        "data": dataset.fingerprint(),
        "n": len(dataset),
        "num_shards": num_shards,
        "shard_index": shard_index,
        "batch_size": batch_size,
        "cbm_version": cbm.__version__,
    }


def _key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def shard_path(out_dir: Path, fields: dict[str, Any]) -> Path:
    i, n = fields["shard_index"], fields["num_shards"]
    return out_dir / f"shard-{i:05d}-of-{n:05d}-{_key(fields)[:16]}.safetensors"


def _stored_fields(path: Path) -> str | None:
    try:
        with safe_open(str(path), framework="numpy") as fh:
            return (fh.metadata() or {}).get("key_fields")
    except Exception:  # unreadable file: treat as absent and recompute
        return None


def embed_rows(
    backbone: Any, dataset: Any, start: int, stop: int, batch_size: int
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Embed rows ``[start, stop)``; unreadable images give NaN rows and a skip record."""
    emb = np.full((stop - start, backbone.embed_dim), np.nan, np.float32)
    skipped: list[dict[str, str]] = []
    if hasattr(dataset, "images"):  # in-memory uint8 array
        for b in range(start, stop, batch_size):
            chunk = dataset.images[b : min(b + batch_size, stop)]
            emb[b - start : b - start + len(chunk)] = backbone.encode_images(chunk, batch_size)
        return emb, skipped
    before = len(dataset.skipped)
    for idx, images in dataset.iter_batches(batch_size, indices=np.arange(start, stop)):
        emb[idx - start] = backbone.encode_images(images, batch_size)
    skipped = [{"path": s.path, "reason": s.reason, "row": s.row} for s in dataset.skipped[before:]]
    return emb, skipped


def embed_dataset(
    backbone: Any, dataset: Any, cache: EmbeddingCache | None = None, batch_size: int = 64
) -> np.ndarray:
    """Embed a whole dataset, through the content-keyed cache when given.

    The key is the backbone identity plus ``dataset.fingerprint()`` (file bytes and
    labels for image folders). Rows of unreadable images are NaN, and their paths and
    reasons are in ``dataset.skipped`` after the call, on a fresh run and on a cache
    hit alike: the report is stored with the cache entry, by row, so a hit names the
    files under their current paths without decoding any image.
    """

    def compute() -> tuple[np.ndarray, list[dict[str, Any]]]:
        return embed_rows(backbone, dataset, 0, len(dataset), batch_size)

    if cache is None:
        return compute()[0]
    hits = cache.hits
    emb, report = cache.get_or_compute_report(backbone.identity(), dataset.fingerprint(), compute)
    if cache.hits > hits and hasattr(dataset, "skipped"):  # a hit: replay the report
        for item in report:
            row = int(item["row"])
            dataset.skipped.append(SkippedImage(str(dataset.paths[row]), item["reason"], row))
    return emb


def extract_shard(
    backbone: Any,
    dataset: Any,
    out_dir: str | Path,
    num_shards: int = 1,
    shard_index: int = 0,
    batch_size: int = 64,
) -> ShardResult:
    """Embed one shard of ``dataset`` into ``out_dir``, unless it is already there.

    Parameters
    ----------
    backbone
        Any :class:`~cbm.backbones.base.Backbone`.
    dataset
        An :class:`~cbm.data.arrays.ArrayDataset` or :class:`~cbm.data.images.ImageDataset`.
    out_dir
        Folder shared by all shards of the run.
    num_shards, shard_index
        Which part of the data this call embeds.
    batch_size
        Images per forward pass; part of the key, since it fixes the shard layout.

    Rows of images that could not be read are NaN; their paths and reasons are
    stored in the shard and listed in ``index.json``.
    """
    out = Path(out_dir)
    fields = _key_fields(backbone, dataset, num_shards, shard_index, batch_size)
    path = shard_path(out, fields)
    start, stop = shard_rows(len(dataset), batch_size, num_shards, shard_index)
    encoded = json.dumps(fields, sort_keys=True)
    if path.is_file() and _stored_fields(path) == encoded:
        result = ShardResult(shard_index, path, (start, stop), computed=False)
    else:
        emb, skipped = embed_rows(backbone, dataset, start, stop, batch_size)
        write_arrays(
            path,
            {"embeddings": emb, "rows": np.asarray([start, stop], np.int64)},
            metadata={"key_fields": encoded, "skipped": json.dumps(skipped)},
        )
        result = ShardResult(shard_index, path, (start, stop), computed=True, skipped=skipped)
    write_index(out, fields)
    return result


def write_index(out_dir: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """(Re)write ``index.json`` from the shard files present for this run's key."""
    shards = {}
    for i in range(fields["num_shards"]):
        f = {**fields, "shard_index": i}
        p = shard_path(out_dir, f)
        stored = _stored_fields(p) if p.is_file() else None
        if stored == json.dumps(f, sort_keys=True):
            with safe_open(str(p), framework="numpy") as fh:
                skipped = json.loads((fh.metadata() or {}).get("skipped", "[]"))
            shards[str(i)] = {"file": p.name, "skipped": skipped}
    common = {k: v for k, v in fields.items() if k != "shard_index"}
    index = {
        "kind": "embedding_shards",
        "schema_version": SCHEMA_VERSION,
        **common,
        "complete": len(shards) == fields["num_shards"],
        "shards": shards,
    }
    write_json(out_dir / "index.json", index)
    return index


def read_index(out_dir: str | Path) -> dict[str, Any]:
    """The ``index.json`` of a shard folder, checked to be one."""
    out = Path(out_dir)
    index = read_json(out / "index.json")
    if not isinstance(index, dict) or index.get("kind") != "embedding_shards":
        raise ArtefactError(f"{out / 'index.json'} is not an embedding shard index")
    return index


def refresh_index(out_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``index.json`` from the shard files on disk and return it.

    Workers that finish at the same moment each rewrite the index from the files they
    see, so the last writer may have missed a shard written a moment earlier; the files
    are the truth. Launchers call this once after all workers are done.
    """
    out = Path(out_dir)
    index = read_index(out)
    keys = ("backbone", "data", "n", "num_shards", "batch_size", "cbm_version")
    try:
        fields = {k: index[k] for k in keys}
    except KeyError as err:
        raise ArtefactError(f"{out / 'index.json'} lacks the field {err}") from err
    return write_index(out, {**fields, "shard_index": 0})


def shard_files(out_dir: str | Path) -> list[Path]:
    """The finished shard files of a run, in dataset order; an error names missing ones."""
    out = Path(out_dir)
    index = read_index(out)
    missing = [i for i in range(index["num_shards"]) if str(i) not in index["shards"]]
    if missing:
        index = refresh_index(out)
        missing = [i for i in range(index["num_shards"]) if str(i) not in index["shards"]]
    if missing:
        raise ArtefactError(
            f"{out}: shards {missing[:10]} of {index['num_shards']} are not finished; "
            "run cbm embed for them (finished shards are not recomputed)"
        )
    return [out / index["shards"][str(i)]["file"] for i in range(index["num_shards"])]


def iter_shards(out_dir: str | Path) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, embeddings)`` shard by shard, never holding more than one."""
    for path in shard_files(out_dir):
        arrays = read_arrays(path)
        start, stop = (int(v) for v in arrays["rows"])
        yield start, stop, arrays["embeddings"]


def load_shards(out_dir: str | Path) -> np.ndarray:
    """All shards concatenated in dataset order: ``(n, embed_dim)``, NaN rows = skipped."""
    parts = [emb for _, _, emb in iter_shards(out_dir)]
    return np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
