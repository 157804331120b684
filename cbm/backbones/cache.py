"""A content-keyed on-disk embedding cache that never guesses.

The key covers the backbone identity (name, weights hash or tag, preprocessing,
embedding size), the exact content of the images (a hash of their bytes) and the cbm
version. The full key is also stored inside each entry and compared on read, so a
hash collision or a hand-copied file cannot be served as a hit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import cbm
from cbm.io import read_arrays, write_arrays


def array_fingerprint(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$CBM_CACHE_DIR``, else ``~/.cache/cbm``."""
    env = os.environ.get("CBM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "cbm"


class EmbeddingCache:
    """Embeddings on disk, one safetensors file per (backbone, data) key.

    Parameters
    ----------
    root
        Folder for the entries (created on first write).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key_fields(backbone_identity: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
        return {
            "backbone": backbone_identity,
            "data": data_fingerprint,
            "cbm_version": cbm.__version__,
        }

    @staticmethod
    def key(fields: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def path_for(self, key: str) -> Path:
        return self.root / f"{key[:2]}" / f"{key}.safetensors"

    def get_entry(self, fields: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
        """The cached embeddings and skip report for these key fields, or ``None``.

        The skip report lists the rows left out (unreadable images) with their reasons;
        it lives in the same file as the embeddings, so both are written in one atomic
        rename and can never disagree. An entry without a report is a miss.
        """
        from safetensors import safe_open

        path = self.path_for(self.key(fields))
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
            if meta.get("key_fields") != json.dumps(fields, sort_keys=True):
                return None
            skipped = json.loads(meta["skipped"])
            if not isinstance(skipped, list) or not all(
                isinstance(s, dict) and isinstance(s.get("reason"), str) for s in skipped
            ):
                return None
            return read_arrays(path)["embeddings"], skipped
        except Exception:  # a corrupt entry is a miss, and is rewritten below
            return None

    def get(self, fields: dict[str, Any]) -> np.ndarray | None:
        """The cached embeddings for these key fields, or ``None``."""
        entry = self.get_entry(fields)
        return None if entry is None else entry[0]

    def put(
        self,
        fields: dict[str, Any],
        embeddings: np.ndarray,
        skipped: Sequence[Mapping[str, Any]] = (),
    ) -> Path:
        """Store embeddings with their skip report (one atomic write)."""
        path = self.path_for(self.key(fields))
        write_arrays(
            path,
            {"embeddings": embeddings.astype(np.float32, copy=False)},
            metadata={
                "key_fields": json.dumps(fields, sort_keys=True),
                "skipped": json.dumps([dict(s) for s in skipped]),
            },
        )
        return path

    def get_or_compute_report(
        self,
        backbone_identity: dict[str, Any],
        data_fingerprint: str,
        compute: Callable[[], tuple[np.ndarray, list[dict[str, Any]]]],
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Cached ``(embeddings, skip report)``, or compute, store and return them.

        Backbones with random, unsaved weights are never cached: their identity cannot
        be reproduced.
        """
        if str(backbone_identity.get("weights_id", "")).startswith("random-init"):
            self.misses += 1
            return compute()
        fields = self.key_fields(backbone_identity, data_fingerprint)
        found = self.get_entry(fields)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        emb, skipped = compute()
        self.put(fields, emb, skipped)
        return emb, skipped

    def get_or_compute(
        self,
        backbone_identity: dict[str, Any],
        data_fingerprint: str,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """Return cached embeddings or compute, store and return them (nothing skipped)."""
        return self.get_or_compute_report(
            backbone_identity, data_fingerprint, lambda: (compute(), [])
        )[0]


def embed_images(
    backbone: Any,
    images: np.ndarray,
    cache: EmbeddingCache | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """Embed a uint8 image array with a backbone, through the cache when given."""

    def compute() -> np.ndarray:
        return np.asarray(backbone.encode_images(images, batch_size=batch_size, progress=progress))

    if cache is None:
        return compute()
    return cache.get_or_compute(backbone.identity(), array_fingerprint(images), compute)
