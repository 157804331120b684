"""The only reader and writer of cbm artefacts: ``config.json`` + ``*.safetensors``.

Every write goes to a temporary file in the same directory and is renamed into place,
so an interrupted run never leaves a half-written file that a later run reads as
valid. Nothing here unpickles anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cbm.exceptions import ArtefactError, CBMError

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only if the block succeeds.

    For artefacts written in pieces (e.g. a memory-mapped ``.npy`` filled shard by
    shard): write to the yielded path; a crash or Ctrl-C inside the block removes it,
    so ``path`` either does not exist or is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates files readable by the owner only; give the final file the
    # permissions an ordinary open() would, so shared model directories stay readable.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (UTF-8, indented, keys in insertion order)."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    _atomic_write_bytes(Path(path), (text + "\n").encode("utf-8"))


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with an error that names the file when it is not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist or is not a file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtefactError(f"{path} is not valid UTF-8 JSON: {err}") from err


def write_arrays(
    path: str | Path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> str:
    """Write numpy arrays to a safetensors file atomically; returns the file's sha256.

    Record the hash in the artefact's ``config.json`` and check it on load
    (:func:`check_sha256`): then a save interrupted between its two files can never
    load as a mix of old and new parts.
    """
    from safetensors.numpy import save

    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    data = save(contiguous, metadata=dict(metadata or {}))
    _atomic_write_bytes(Path(path), data)
    return hashlib.sha256(data).hexdigest()


def check_sha256(path: Path, expected: str | None) -> None:
    """Raise when a file's sha256 differs from the one its config recorded."""
    if expected is None:
        return
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    if h.hexdigest() != expected:
        raise ArtefactError(
            f"{path} does not match the sha256 recorded in config.json: the directory holds "
            "parts of two different saves (an interrupted save?) or was edited by hand"
        )


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of a safetensors file; refuses anything else (e.g. a pickle)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path} does not exist or is not a file")
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as err:
        raise ArtefactError(
            f"{path} is not a valid safetensors file ({err}); cbm never loads pickles, "
            "so files written by torch.save or pickle are refused"
        ) from err


@contextlib.contextmanager
def reading_artefact(path: str | Path) -> Iterator[None]:
    """Report any low-level error while interpreting an artefact as an ``ArtefactError``.

    A ``config.json`` edited by hand, damaged or written by another program can hold a
    value of any type anywhere; the loaders check the fields they know, and this turns
    whatever else goes wrong into an error that names the artefact (found by fuzzing,
    ``tests/fuzz``). cbm's own errors pass through unchanged.
    """
    try:
        yield
    except CBMError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise ArtefactError(
            f"{path} is malformed ({type(err).__name__}: {err}): a field has the wrong type "
            "or value. It was edited by hand, damaged, or written by another program; "
            "re-save it with cbm"
        ) from err


def check_config(config: Any, kind: str, path: Path) -> dict[str, Any]:
    """Validate the header of an artefact's ``config.json``."""
    if not isinstance(config, dict):
        raise ArtefactError(f"{path}: expected a JSON object, got {type(config).__name__}")
    found = config.get("kind")
    if found != kind:
        raise ArtefactError(f"{path}: expected an artefact of kind {kind!r}, found {found!r}")
    version = config.get("schema_version")
    if not isinstance(version, int):
        raise ArtefactError(f"{path}: missing integer 'schema_version'")
    if version > SCHEMA_VERSION:
        raise ArtefactError(
            f"{path}: schema version {version} is newer than this cbm understands "
            f"({SCHEMA_VERSION}); upgrade cbm-workbench to read it"
        )
    return config


def expect_array(
    arrays: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...], path: Path
) -> np.ndarray:
    """Fetch one array and check its shape against the config."""
    if name not in arrays:
        raise ArtefactError(f"{path}: missing tensor {name!r} (found: {', '.join(sorted(arrays))})")
    arr = arrays[name]
    if tuple(arr.shape) != tuple(shape):
        raise ArtefactError(
            f"{path}: tensor {name!r} has shape {tuple(arr.shape)}, but config.json implies {shape}"
        )
    if arr.dtype.kind not in "fiu" or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
        raise ArtefactError(
            f"{path}: tensor {name!r} holds NaN, infinite or non-numeric values "
            f"(dtype {arr.dtype}); fitted parameters are always finite numbers, so the "
            "file is damaged: re-save the model"
        )
    return arr
