"""``cbm app``: launch the Streamlit workbench on a model directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

import cbm
from cbm.exceptions import ConfigurationError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def app_script() -> Path:
    """The workbench's entry script, in a wheel (``cbm/_app``) or a source checkout."""
    package = Path(cbm.__file__).parent
    for candidate in (package / "_app" / "workbench.py", package.parent / "app" / "workbench.py"):
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        "the workbench pages (app/workbench.py) are missing from this installation; "
        "reinstall cbm-workbench with the [app] extra"
    )


def streamlit_command(
    script: Path, host: str = "127.0.0.1", port: int = 8501, max_upload_mb: int = 8
) -> list[str]:
    """The ``streamlit run`` command line the workbench is served with."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(max_upload_mb),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def app_environment(
    model_dir: Path | None, models_root: Path | None, max_upload_mb: int = 8
) -> dict[str, str]:
    """Environment of the server: the model to open, the folder of models to list and
    the upload limit (enforced again when the app decodes an upload)."""
    env = dict(os.environ)
    env["CBM_APP_MAX_UPLOAD_MB"] = str(max_upload_mb)
    if model_dir is not None:
        env["CBM_APP_MODEL"] = str(model_dir.resolve())
    root = models_root or (model_dir.resolve().parent if model_dir is not None else Path.cwd())
    env["CBM_APP_MODELS_ROOT"] = str(root.resolve())
    return env


def register(app: typer.Typer) -> None:
    @app.command("app")
    def run_app(
        model_dir: Annotated[
            Path | None, typer.Argument(help="A saved model directory to open.")
        ] = None,
        models_root: Annotated[
            Path | None,
            typer.Option(help="Folder whose model directories the Model page lists."),
        ] = None,
        host: Annotated[
            str, typer.Option(help="Address to bind; the default serves this machine only.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8501,
        max_upload_mb: Annotated[int, typer.Option(min=1, max=200)] = 8,
    ) -> None:
        """Open the workbench: inspect concept activations and intervene, in the browser.

        It binds 127.0.0.1, so only this machine can reach it. Before exposing it
        (--host 0.0.0.0), put it behind an authenticating reverse proxy with TLS: the
        app has no log-in, shows every model under --models-root and writes edited
        models next to them.
        """
        from rich.console import Console

        console = Console()
        try:
            import streamlit  # noqa: F401
        except ImportError:
            console.print(
                "[bold red]error:[/] the workbench needs Streamlit: "
                "pip install -e '.[app]' in the cbm checkout"
            )
            raise typer.Exit(code=1) from None
        if model_dir is not None and not (model_dir / "config.json").is_file():
            console.print(
                f"[bold red]error:[/] {model_dir} is not a saved model (no config.json); "
                "make one with: cbm demo --out DIR"
            )
            raise typer.Exit(code=1)
        if host not in LOCAL_HOSTS:
            console.print(
                f"[bold yellow]warning:[/] serving on {host}: anyone who can reach this "
                "port can read and edit your models. Use a reverse proxy with "
                "authentication and TLS."
            )
        script = app_script()
        cmd = streamlit_command(script, host, port, max_upload_mb)
        console.print(f"cbm workbench on http://{host}:{port} (Ctrl+C to stop)")
        try:
            code = subprocess.call(cmd, env=app_environment(model_dir, models_root, max_upload_mb))
        except KeyboardInterrupt:
            code = 0
        raise typer.Exit(code=code)
