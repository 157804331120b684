from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import synthetic_model_dir  # noqa: E402


@pytest.fixture(scope="session")
def app_script() -> str:
    return str(Path(__file__).resolve().parents[2] / "app" / "workbench.py")


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_model_dir(tmp_path_factory.mktemp("models") / "synthetic")
