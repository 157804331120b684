"""``cbm app``: command line, environment and refusals (no server is started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cbm.cli import app
from cbm.cli_app import app_environment, app_script, streamlit_command


def test_server_binds_localhost_by_default_with_an_upload_limit() -> None:
    cmd = streamlit_command(app_script(), port=8600, max_upload_mb=3)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "3"
    assert app_script().name == "workbench.py" and app_script().is_file()


def test_environment_names_the_model_and_the_folder_to_list(tmp_path: Path) -> None:
    env = app_environment(tmp_path / "m", None, max_upload_mb=5)
    assert env["CBM_APP_MODEL"] == str((tmp_path / "m").resolve())
    assert env["CBM_APP_MODELS_ROOT"] == str(tmp_path.resolve())
    assert env["CBM_APP_MAX_UPLOAD_MB"] == "5"


def test_app_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    pytest.importorskip("streamlit", reason="cbm app needs the [app] extra")
    result = CliRunner().invoke(app, ["app", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not a saved model" in " ".join(result.output.split())
