"""Fuzz targets: regressions replayed in the default lane, atheris runs in the slow lane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from targets import ModelDirTarget, parse_target

from cbm.exceptions import ArtefactError
from cbm.model import ConceptBottleneckModel

HERE = Path(__file__).parent
SECONDS = int(os.environ.get("CBM_FUZZ_SECONDS", "30"))

# What the fuzzer found, as the config edits its inputs made (fuzz bytes map to edits
# through the seed config's layout, which changes as the model grows new fields).
REGRESSIONS = {
    # head classes not integers: int(None) raised a bare TypeError
    "classes-none": ({("head", "classes", 1): None}, "is malformed .TypeError"),
    # class names fewer than the head's classes: IndexError inside predict
    "class-names-empty": ({("class_names",): {}}, "indices into the 0 class names"),
    "class-names-short": ({("class_names",): ["x"]}, "indices into the 1 class names"),
}


@pytest.fixture(scope="module")
def model_dir_target(tmp_path_factory: pytest.TempPathFactory) -> ModelDirTarget:
    return ModelDirTarget(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize(("edits", "message"), REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_model_dir_regressions_are_refused_cleanly(
    model_dir_target: ModelDirTarget, edits: dict[tuple[object, ...], object], message: str
) -> None:
    with pytest.raises(ArtefactError, match=message):
        model_dir_target.edited(edits)


def test_harness_mutates_a_model_that_loads(model_dir_target: ModelDirTarget) -> None:
    seed = ConceptBottleneckModel.load(model_dir_target.work.parent / "seed")
    assert seed.predict(model_dir_target.embeddings).shape == (2,)
    config, arrays = model_dir_target.files(bytes([1, 0, 0, 0, 5]))  # mode 1: one key deleted
    assert json.loads(config) != model_dir_target.config and arrays == model_dir_target.arrays


def test_random_inputs_without_atheris(model_dir_target: ModelDirTarget) -> None:
    """A cheap, unguided sweep for the default lane (atheris goes much deeper)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        data = rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8).tobytes()
        model_dir_target(data)
        parse_target(data)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["parse", "model_dir"])
def test_atheris_finds_nothing_in_bounded_time(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}
    run = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz.py"),
            target,
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done" in run.stderr
