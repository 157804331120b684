import numpy as np
import pytest

from cbm.backbones import EmbeddingCache, array_fingerprint

IDENTITY = {
    "backbone_id": "open_clip:x",
    "weights_id": "sha256:abc",
    "embed_dim": 4,
    "preprocess": {"image_size": 64},
}


def _compute_counter():
    calls = []

    def compute():
        calls.append(1)
        return np.full((3, 4), len(calls), np.float32)

    return compute, calls


def test_second_call_is_a_hit(tmp_path):
    cache = EmbeddingCache(tmp_path)
    compute, calls = _compute_counter()
    a = cache.get_or_compute(IDENTITY, "data1", compute)
    b = cache.get_or_compute(IDENTITY, "data1", compute)
    np.testing.assert_array_equal(a, b)
    assert len(calls) == 1 and cache.hits == 1


@pytest.mark.parametrize(
    "change",
    [
        {"weights_id": "sha256:def"},
        {"backbone_id": "open_clip:y"},
        {"preprocess": {"image_size": 96}},
        {"embed_dim": 8},
    ],
)
def test_any_changed_backbone_field_is_a_miss(tmp_path, change):
    cache = EmbeddingCache(tmp_path)
    compute, calls = _compute_counter()
    cache.get_or_compute(IDENTITY, "data1", compute)
    cache.get_or_compute({**IDENTITY, **change}, "data1", compute)
    assert len(calls) == 2


def test_changed_data_or_version_is_a_miss(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    compute, calls = _compute_counter()
    cache.get_or_compute(IDENTITY, "data1", compute)
    cache.get_or_compute(IDENTITY, "data2", compute)
    monkeypatch.setattr("cbm.__version__", "99.0")
    cache.get_or_compute(IDENTITY, "data1", compute)
    assert len(calls) == 3


def test_corrupt_entry_is_a_miss_and_is_rewritten(tmp_path):
    cache = EmbeddingCache(tmp_path)
    compute, calls = _compute_counter()
    cache.get_or_compute(IDENTITY, "d", compute)
    path = cache.path_for(cache.key(cache.key_fields(IDENTITY, "d")))
    path.write_bytes(b"garbage")
    cache.get_or_compute(IDENTITY, "d", compute)
    assert len(calls) == 2
    cache.get_or_compute(IDENTITY, "d", compute)
    assert len(calls) == 2


def test_random_weights_are_never_cached(tmp_path):
    cache = EmbeddingCache(tmp_path)
    compute, calls = _compute_counter()
    ident = {**IDENTITY, "weights_id": "random-init:123"}
    cache.get_or_compute(ident, "d", compute)
    cache.get_or_compute(ident, "d", compute)
    assert len(calls) == 2 and not list(tmp_path.rglob("*.safetensors"))


def test_fingerprint_sees_content_shape_and_dtype():
    a = np.zeros((2, 3), np.uint8)
    assert array_fingerprint(a) == array_fingerprint(a.copy())
    b = a.copy()
    b[1, 2] = 1
    assert array_fingerprint(a) != array_fingerprint(b)
    assert array_fingerprint(a) != array_fingerprint(a.reshape(3, 2))
    assert array_fingerprint(a) != array_fingerprint(a.astype(np.int8))
