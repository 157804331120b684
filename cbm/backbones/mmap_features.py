"""Sharded embeddings as one memory-mapped array, built and consumed with bounded RAM.

Shard files (:mod:`cbm.backbones.shards`) are separate safetensors files; the heads
(:class:`~cbm.heads.sparse.SparseLinearHead`) and the SAE
(:class:`~cbm.concepts.sae.SparseAutoencoder`) stream rows from a ``np.memmap``. This
module joins the two without ever holding more than a chunk of rows in RAM:

* :func:`consolidate_shards` writes the finished shards, in dataset order, into a single
  ``.npy`` file, a chunk at a time, and drops the NaN rows of unreadable images. The
  file is filled through a temporary name and renamed when complete, and its name
  carries the shard run's key, so a rerun reuses it and a changed run never does.
* :func:`map_rows` streams any row-wise function (e.g. a concept scorer's
  ``transform``) over a memory-mapped array into another ``.npy`` file: concept scores
  for a million images without a million-row temporary.
* :func:`open_features` opens such a file read-only as a ``np.memmap`` (never with
  pickle), ready for ``SparseLinearHead.fit`` or ``SparseAutoencoder.fit``.

The ``.npy`` format is used because numpy memory-maps it natively; it holds plain
numbers (``allow_pickle=False`` on every read).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from cbm.backbones.shards import read_index, shard_files
from cbm.exceptions import ArtefactError, ValidationError
from cbm.io import atomic_path


@dataclass(frozen=True)
class ShardFeatures:
    """A consolidated feature file and the dataset rows it holds.

    Attributes
    ----------
    path
        The ``.npy`` file of finite embedding rows, in dataset order.
    rows
        Dataset index of each stored row (rows of unreadable images are absent), so
        ``labels[rows]`` lines up with :meth:`open`.
    """

    path: Path
    rows: np.ndarray

    def open(self) -> np.memmap:
        """The features as a read-only ``np.memmap``."""
        return open_features(self.path)


def open_features(path: str | Path) -> np.memmap:
    """Open a ``.npy`` feature file read-only as a ``np.memmap`` (pickle refused)."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist or is not a file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ArtefactError(f"{path} is not a numeric .npy file ({err})") from err
    if not isinstance(arr, np.memmap) or arr.ndim != 2:
        raise ArtefactError(f"{path}: expected a 2-D array of features, got {arr.shape}")
    return arr


def write_npy(
    chunks: Iterable[np.ndarray], n_rows: int, path: str | Path, dtype: str = "float32"
) -> Path:
    """Write ``(rows, d)`` chunks, in order, into one ``.npy`` file of ``n_rows`` rows.

    Only one chunk is in RAM at a time; the file appears at ``path`` only once every
    row is written. ``d`` is taken from the first chunk.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        out: np.memmap | None = None
        at = 0
        for chunk in chunks:
            if out is None:
                shape = (n_rows, chunk.shape[1])
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            if chunk.ndim != 2 or chunk.shape[1] != out.shape[1] or at + len(chunk) > n_rows:
                raise ValidationError(
                    f"chunk of shape {chunk.shape} does not fit rows {at}.. of a "
                    f"({n_rows}, {out.shape[1]}) array"
                )
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
        if out is None or at != n_rows:
            raise ValidationError(f"expected {n_rows} rows in all, got {at}")
        out.flush()
        del out  # close the map before the rename
    return path


def _run_key(out_dir: Path) -> str:
    index = read_index(out_dir)
    fields = {k: v for k, v in index.items() if k not in ("shards", "complete")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _shard_chunks(files: list[Path], chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first dataset row, rows)`` blocks of at most ``chunk_rows``, read from the files."""
    for path in files:
        try:
            with safe_open(str(path), framework="numpy") as fh:
                start = int(fh.get_tensor("rows")[0])
                emb = fh.get_slice("embeddings")
                n = emb.get_shape()[0]
                for a in range(0, n, chunk_rows):
                    yield start + a, emb[a : min(a + chunk_rows, n)]
        except SafetensorError as err:
            raise ArtefactError(f"{path} is not a readable shard file ({err})") from err


def consolidate_shards(
    out_dir: str | Path, path: str | Path | None = None, chunk_rows: int = 16384
) -> ShardFeatures:
    """Join a finished shard run into one ``.npy`` of finite rows, a chunk at a time.

    Parameters
    ----------
    out_dir
        The folder of ``cbm embed`` / :func:`~cbm.backbones.shards.extract_shard`.
    path
        Where to write; default ``out_dir/features-<run key>.npy``. An existing file
        (with its ``.rows.npy``) is reused, not rewritten.
    chunk_rows
        Rows read from a shard file at a time.

    Returns
    -------
    ShardFeatures
        The file and the dataset row of each stored row. Peak RAM is a few chunks,
        whatever the size of the shards.
    """
    out = Path(out_dir)
    target = Path(path) if path is not None else out / f"features-{_run_key(out)}.npy"
    rows_path = target.with_suffix(".rows.npy")
    if target.is_file() and rows_path.is_file():
        return ShardFeatures(target, np.load(rows_path, allow_pickle=False))
    files = shard_files(out)
    keep = [  # first pass: which rows are usable, a chunk at a time
        start + np.flatnonzero(np.isfinite(block).all(axis=1))
        for start, block in _shard_chunks(files, chunk_rows)
    ]
    rows = np.concatenate(keep) if keep else np.empty(0, np.int64)
    if rows.size == 0:
        raise ValidationError(f"{out}: no readable image in any shard; nothing to consolidate")

    def finite() -> Iterator[np.ndarray]:
        for (start, block), kept in zip(_shard_chunks(files, chunk_rows), keep, strict=True):
            yield block[kept - start]

    # rows first: a features file without its rows file is never left behind
    with atomic_path(rows_path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, rows.astype(np.int64), allow_pickle=False)
    write_npy(finite(), rows.size, target)
    return ShardFeatures(target, rows)


def map_rows(
    X: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    path: str | Path,
    chunk_rows: int = 65536,
    dtype: str = "float32",
) -> np.memmap:
    """Apply a row-wise ``fn`` to ``X`` chunk by chunk into a new memory-mapped file.

    ``fn`` must map ``(m, d)`` rows to ``(m, k)`` rows independently of other rows
    (e.g. ``scorer.transform`` of a fitted concept scorer). Returns the result opened
    read-only.
    """
    if chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be at least 1, got {chunk_rows}")
    n = X.shape[0]
    chunks = (np.asarray(fn(np.asarray(X[i : i + chunk_rows]))) for i in range(0, n, chunk_rows))
    return open_features(write_npy(chunks, n, path, dtype))
