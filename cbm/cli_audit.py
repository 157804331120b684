"""``cbm audit MODEL_DIR``: every metric of cbm.metrics on a saved model, as a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def _data_from_file(path: Path):
    from cbm.audit.report import AuditData
    from cbm.io import read_arrays

    arrays = read_arrays(path)
    needed = ("train_embeddings", "train_labels", "test_embeddings", "test_labels")
    missing = [k for k in needed if k not in arrays]
    if missing:
        from cbm.exceptions import ArtefactError

        raise ArtefactError(
            f"{path} lacks {', '.join(missing)}; an audit data file holds "
            f"{', '.join(needed)} (and optionally test_concepts)"
        )
    return AuditData(
        train_embeddings=arrays["train_embeddings"],
        train_labels=arrays["train_labels"].astype(int),
        test_embeddings=arrays["test_embeddings"],
        test_labels=arrays["test_labels"].astype(int),
        test_concepts=arrays.get("test_concepts"),
        description=f"embeddings from {path}",
    )


def audit(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    out: Annotated[
        Path | None, typer.Option(help="Report folder (default: MODEL_DIR/audit).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="safetensors file with train/test embeddings and labels (and optionally "
            "test_concepts), for models not trained on the shapes world."
        ),
    ] = None,
    n_train: Annotated[int, typer.Option(min=50, help="Shapes-world training images.")] = 2000,
    n_test: Annotated[int, typer.Option(min=50, help="Shapes-world test images.")] = 1000,
    n_maps: Annotated[int, typer.Option(min=0, help="Test images for localisation.")] = 200,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Audit a model: task, concept quality, localisation, information, leakage."""
    from cbm.audit.markdown import to_markdown
    from cbm.audit.plots import make_figures
    from cbm.audit.report import model_summary, run_audit
    from cbm.exceptions import CBMError
    from cbm.model import ConceptBottleneckModel

    out_dir = out if out is not None else model_dir / "audit"
    try:
        model = ConceptBottleneckModel.load(model_dir)
        if data is not None:
            audit_data = _data_from_file(data)
        elif "world" in model.training:
            from cbm.audit.shapes import shapes_audit_data
            from cbm.backbones.factory import reopen_backbone

            backbone = reopen_backbone(model.backbone, device)
            audit_data = shapes_audit_data(
                model, backbone, n_train=n_train, n_test=n_test, n_maps=n_maps
            )
        else:
            audit_data = None
        if audit_data is None:
            from cbm.audit.report import AuditReport

            report = AuditReport(model=model_summary(model), data="none")
            report.skipped["every data-based section"] = (
                "the model card has no training.world (not a shapes-world model) and no "
                "--data file was given: only the model's own structure is reported"
            )
        else:
            console.print(f"auditing on {audit_data.description} ...")
            report = run_audit(model, audit_data, seed=seed)
    except CBMError as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(code=1) from err
    figures = make_figures(report, out_dir / "figures")
    text = to_markdown(report, figures, base=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    console.print(text, markup=False, highlight=False)
    console.print(f"wrote [bold]{out_dir / 'report.md'}[/] and {len(figures)} figure(s)")


def register(app: typer.Typer) -> None:
    """Add ``cbm audit`` to the ``cbm`` command."""
    app.command("audit")(audit)
