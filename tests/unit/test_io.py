import os
import pickle

import numpy as np
import pytest

from cbm.exceptions import ArtefactError
from cbm.io import SCHEMA_VERSION, check_config, read_arrays, write_arrays, write_json


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_planted_pickle_is_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"w": _Boom()}))
    with pytest.raises(ArtefactError, match="never loads pickles"):
        read_arrays(path)
    assert not (tmp_path / "PWNED").exists()


def test_arrays_round_trip_and_leave_no_temporary_files(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3)}
    write_arrays(tmp_path / "x.safetensors", arrays)
    back = read_arrays(tmp_path / "x.safetensors")
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "c.json"
    write_json(path, {"ok": 1})
    with pytest.raises(ValueError):
        write_json(path, {"bad": float("nan")})
    assert path.read_text().strip().endswith("}")
    assert "ok" in path.read_text()
    assert len(list(tmp_path.iterdir())) == 1


def test_future_schema_is_refused(tmp_path):
    cfg = {"kind": "concept_bottleneck_model", "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ArtefactError, match="newer than this cbm"):
        check_config(cfg, "concept_bottleneck_model", tmp_path / "config.json")


def test_written_files_get_ordinary_permissions(tmp_path):
    write_json(tmp_path / "c.json", {"a": 1})
    mode = (tmp_path / "c.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
