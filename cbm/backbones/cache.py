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
from collections.abc import Callable
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

    def get(self, fields: dict[str, Any]) -> np.ndarray | None:
        """The cached embeddings for these key fields, or ``None``."""
        from safetensors import safe_open

        path = self.path_for(self.key(fields))
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as fh:
                stored = (fh.metadata() or {}).get("key_fields")
            if stored != json.dumps(fields, sort_keys=True):
                return None
            return read_arrays(path)["embeddings"]
        except Exception:  # a corrupt entry is a miss, and is rewritten below
            return None

    def put(self, fields: dict[str, Any], embeddings: np.ndarray) -> Path:
        path = self.path_for(self.key(fields))
        write_arrays(
            path,
            {"embeddings": embeddings.astype(np.float32, copy=False)},
            metadata={"key_fields": json.dumps(fields, sort_keys=True)},
        )
        return path

    def get_or_compute(
        self,
        backbone_identity: dict[str, Any],
        data_fingerprint: str,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """Return cached embeddings or compute, store and return them.

        Backbones with random, unsaved weights are never cached: their identity cannot
        be reproduced.
        """
        if str(backbone_identity.get("weights_id", "")).startswith("random-init"):
            self.misses += 1
            return compute()
        fields = self.key_fields(backbone_identity, data_fingerprint)
        found = self.get(fields)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        emb = compute()
        self.put(fields, emb)
        return emb


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
