"""Fuzz targets: plain functions of bytes, run by atheris (``fuzz.py``) and replayed by pytest.

Each target turns the fuzzer's bytes into an input for one cbm entry point that reads
untrusted text or files. Only cbm's own documented errors (:class:`cbm.exceptions.CBMError`
and its subclasses) count as a clean refusal; any other exception escapes and is a
failure, as is a broken invariant (:class:`InvariantBroken`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from cbm.concepts import ConceptBank
from cbm.concepts.parse import (
    MAX_PHRASE_CHARS,
    MAX_SENTENCE_CHARS,
    clean_concept,
    concept_key,
    parse_concepts,
)
from cbm.exceptions import CBMError
from cbm.model import ConceptBottleneckModel


class InvariantBroken(AssertionError):
    """The entry point returned, but its documented promise does not hold."""


class ByteReader:
    """Draws small integers, choices and JSON-like values from fuzzer bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    def rest(self) -> bytes:
        out, self.at = self.data[self.at :], len(self.data)
        return out

    def text(self) -> str:
        n = self.byte()
        raw = self.data[self.at : self.at + n]
        self.at += len(raw)
        return raw.decode("utf-8", "replace")

    def value(self, depth: int = 0) -> Any:
        """Any JSON value: what a hand-edited or hostile config.json can hold."""
        kind = self.byte() % (8 if depth < 3 else 5)
        if kind == 0:
            return None
        if kind == 1:
            return bool(self.byte() & 1)
        if kind == 2:
            return int.from_bytes(bytes(self.byte() for _ in range(4)), "little", signed=True)
        if kind == 3:
            return [0.0, -1.5, 1e308, -1e-300, 3.0][self.byte() % 5]
        if kind == 4:
            return self.text()
        if kind in (5, 6):
            return [self.value(depth + 1) for _ in range(self.byte() % 4)]
        return {self.text(): self.value(depth + 1) for _ in range(self.byte() % 4)}


# Starting points for the fuzzer: answers shaped like real LLM output.
SEEDS: dict[str, list[bytes]] = {
    "parse": [
        b"\x00Here are some features:\n1. **Wings** - used for flying\n2. a tail\n3) Engines.",
        b'\x00```json\n{"concepts": ["red fur", {"name": "long tail"}]}\n```',
        b"\x01- The animal has four legs.\n- It is often found near water (rivers).",
        b"\x00Features include: wings, a tail, and engines; also a cockpit",
    ],
    "model_dir": [bytes([1, 2, 0, 7, 4, 3, 97, 98, 99]), bytes([3, 7, 1, 0, 255])],
}


# -- the concept-list parser -----------------------------------------------------------
def parse_target(data: bytes) -> None:
    """Any text an LLM (or a paste from a chat window) gives parses without error."""
    kind = "sentences" if data[:1] and data[0] & 1 else "phrases"
    text = data[1:].decode("utf-8", "replace")
    limit = MAX_SENTENCE_CHARS if kind == "sentences" else MAX_PHRASE_CHARS
    result = parse_concepts(text, kind)
    keys = [concept_key(c) for c in result.concepts]
    if len(set(keys)) != len(keys):
        raise InvariantBroken(f"duplicates survived: {result.concepts!r}")
    for name in result.concepts:
        if not name or len(name) > limit:
            raise InvariantBroken(f"{name!r} is empty or longer than {limit}")
        again = clean_concept(name, limit, drop_explanation=kind != "sentences")
        if again != name:
            raise InvariantBroken(f"cleaning is not idempotent: {name!r} -> {again!r}")


# -- the model-directory loader ----------------------------------------------------------
def _seed_model() -> ConceptBottleneckModel:
    rng = np.random.default_rng(0)
    bank = ConceptBank("b", ("red", "round", "striped", "tiny"))
    backbone = {"backbone_id": "t", "weights_id": "sha256:0", "embed_dim": 8}
    model = ConceptBottleneckModel(bank, rng.standard_normal((4, 8)), backbone, ("x", "y", "z"))
    return model.fit(rng.standard_normal((60, 8)), np.arange(60) % 3)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


class ModelDirTarget:
    """Loads a model directory whose ``config.json`` or arrays the fuzzer has edited.

    The first byte picks the attack: 0 raw bytes as ``config.json``; 1-2 a valid config
    with one value (anywhere in the tree) replaced by any JSON value or deleted; 3 the
    safetensors file with bytes overwritten (and the config's hash removed, so the
    loader has to parse it).
    """

    def __init__(self, root: Path) -> None:
        seed = _seed_model().save(root / "seed")
        self.config = json.loads((seed / "config.json").read_text())
        self.arrays = (seed / "model.safetensors").read_bytes()
        self.paths = _paths(self.config)[1:]
        self.embeddings = np.random.default_rng(1).standard_normal((2, 8))
        self.work = root / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def files(self, data: bytes) -> tuple[bytes, bytes]:
        """``(config.json bytes, model.safetensors bytes)`` for one fuzz input."""
        r = ByteReader(data)
        mode = r.byte() % 4
        if mode == 0:
            return r.rest(), self.arrays
        config = copy.deepcopy(self.config)
        arrays = self.arrays
        if mode in (1, 2):
            for _ in range(1 + r.byte() % 3):
                path = self.paths[(r.byte() << 8 | r.byte()) % len(self.paths)]
                parent = config
                try:
                    for key in path[:-1]:
                        parent = parent[key]
                    if r.byte() % 5 == 0 and isinstance(parent, dict):
                        parent.pop(path[-1], None)
                    else:
                        parent[path[-1]] = r.value()
                except (KeyError, IndexError, TypeError):
                    continue  # an earlier edit removed this path
        else:
            config.pop("arrays_sha256", None)
            buf = bytearray(arrays)
            for _ in range(1 + r.byte() % 8):
                buf[(r.byte() << 8 | r.byte()) % len(buf)] = r.byte()
            arrays = bytes(buf)
        return json.dumps(config).encode(), arrays

    def edited(self, edits: dict[tuple[Any, ...], Any]) -> ConceptBottleneckModel:
        """Load the seed with values replaced at the given paths; errors propagate."""
        config = copy.deepcopy(self.config)
        for path, value in edits.items():
            parent = config
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = value
        self._write(json.dumps(config).encode(), self.arrays)
        return ConceptBottleneckModel.load(self.work)

    def _write(self, config: bytes, arrays: bytes) -> None:
        (self.work / "config.json").write_bytes(config)
        (self.work / "model.safetensors").write_bytes(arrays)

    def __call__(self, data: bytes) -> None:
        self._write(*self.files(data))
        try:
            model = ConceptBottleneckModel.load(self.work)
            # accepted: then it must also predict, or refuse the input cleanly
            model.predict(self.embeddings)
        except CBMError:
            return  # a clean, documented refusal
