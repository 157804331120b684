"""The ``cbm`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="cbm: concept bottleneck models on CLIP embeddings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to save the fitted model.")] = Path(
        "cbm-demo-model"
    ),
    n_train: Annotated[int, typer.Option(min=20, help="Training images.")] = 3000,
    n_test: Annotated[int, typer.Option(min=20, help="Test images.")] = 1500,
    seed: Annotated[int, typer.Option(help="Shapes-world seed.")] = 0,
    nec: Annotated[float, typer.Option(min=0.1, help="Target concepts per class.")] = 5.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON.")
    ] = None,
) -> None:
    """Shapes world -> tiny CLIP -> concepts -> sparse head, with controls, in one go."""
    from cbm.exceptions import CBMError
    from cbm.pipeline import run_demo

    console.print(
        f"[bold]cbm demo[/]: shapes world seed {seed}, {n_train} train / {n_test} test "
        f"images, shipped tiny CLIP, target NEC {nec:g}"
    )
    try:
        report = run_demo(
            out,
            n_train=n_train,
            n_test=n_test,
            seed=seed,
            target_nec=nec,
            device=device,
            cache_dir=cache_dir,
        )
    except CBMError as err:
        _fail(str(err))
        return
    table = Table(title=f"{report.dataset}, {report.backbone}", show_header=True)
    table.add_column("model")
    table.add_column("test accuracy", justify="right")
    table.add_column("NEC", justify="right")
    table.add_row(
        f"CBM, shapes bank ({report.n_concepts} concepts)",
        f"{report.test_accuracy:.1%}",
        f"{report.nec:.2f}",
    )
    table.add_row(
        f"same head, {report.n_concepts} random directions (control)",
        f"{report.random_control_accuracy:.1%}",
        f"{report.random_control_nec:.2f}",
    )
    table.add_row(
        "linear probe on embeddings (ceiling)", f"{report.linear_probe_accuracy:.1%}", "dense"
    )
    console.print(table)
    if report.tighter_budgets:
        tight = Table(title="tighter budgets: shapes bank vs random directions, same head")
        for col in ("target NEC", "bank accuracy (NEC)", "random control (NEC)", "gap"):
            tight.add_column(col, justify="right")
        for row in report.tighter_budgets:
            tight.add_row(
                f"{row['target_nec']:g}",
                f"{row['accuracy']:.1%} ({row['nec']:.2f})",
                f"{row['random_control_accuracy']:.1%} ({row['random_control_nec']:.2f})",
                f"{row['accuracy'] - row['random_control_accuracy']:+.1%}",
            )
        console.print(tight)
    auroc = Table(title="concept AUROC against ground truth (test split)")
    for dim in report.concept_auroc:
        auroc.add_column(dim, justify="right")
    auroc.add_row(*(f"{v:.3f}" for v in report.concept_auroc.values()))
    console.print(auroc)
    console.print("[bold]what each class rests on[/] (concept: weight)")
    for cls, concepts in report.concepts_per_class.items():
        text = ", ".join(f"{c} {w:+.2f}" for c, w in concepts)
        console.print(f"  {cls:<9} {text}")
    console.print(
        f"saved model to [bold]{report.model_dir}[/] ({report.seconds:.0f} s, "
        f"{report.cache_hits} of 2 embedding sets from cache).\n"
        f"Open it in the workbench: cbm app {report.model_dir}  (needs the \\[app] extra); "
        f"audit it: cbm audit {report.model_dir}; explain image files: "
        f"cbm explain {report.model_dir} IMAGE...; in Python: "
        f"cbm.model.ConceptBottleneckModel.load({str(report.model_dir)!r})"
    )
    if json_out is not None:
        from cbm.io import write_json

        write_json(json_out, report.to_dict())


@app.command("train-backbone")
def train_backbone(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.safetensors).")] = Path(
        "shapes-clip-rn.safetensors"
    ),
    steps: Annotated[int, typer.Option(min=1)] = 1500,
    batch_size: Annotated[int, typer.Option(min=8)] = 128,
    lr: Annotated[float, typer.Option()] = 2e-3,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option()] = "auto",
    init: Annotated[
        Path | None, typer.Option(help="Continue from this checkpoint instead of random weights.")
    ] = None,
) -> None:
    """Train the tiny CLIP on the shapes world (the shipped checkpoint came from this)."""
    from cbm.backbones import resolve_device, tiny_clip
    from cbm.io import write_json

    model, report = tiny_clip.train_tiny_clip(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=str(resolve_device(device)),
        init=init,
    )
    tiny_clip.save_weights(model, out)
    zero_shot = tiny_clip.zero_shot_of_model(model)
    write_json(
        out.with_suffix(".json"),
        {
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "init": str(init) if init is not None else None,
            "seconds": report.seconds,
            "zero_shot": zero_shot,
            "loss_every_50": report.losses,
        },
    )
    table = Table(title=f"zero-shot accuracy on 1,000 held-out images ({out})")
    for dim in zero_shot:
        table.add_column(dim, justify="right")
    table.add_row(*(f"{v:.1%}" for v in zero_shot.values()))
    console.print(table)


@app.command()
def explain(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    top: Annotated[int, typer.Option(min=1)] = 5,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Classify image files with a saved model and name the concepts behind each call."""
    from PIL import Image, UnidentifiedImageError

    from cbm.backbones.factory import reopen_backbone
    from cbm.exceptions import CBMError
    from cbm.model import ConceptBottleneckModel

    try:
        model = ConceptBottleneckModel.load(model_dir)
    except CBMError as err:
        _fail(str(err))
        return
    try:
        backbone = reopen_backbone(model.backbone, device)
    except CBMError as err:
        _fail(str(err))
        return
    loaded, skipped = [], []
    for path in images:
        try:
            with Image.open(path) as im:
                im.load()
                loaded.append((path, im.convert("RGB")))
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            skipped.append((path, str(err)))
    for path, why in skipped:
        console.print(f"[yellow]skipped[/] {path}: {why}")
    if not loaded:
        _fail("no readable image among the inputs")
    emb = backbone.encode_images([im for _, im in loaded])
    for (path, _), exp in zip(loaded, model.explain(emb, top=top), strict=True):
        console.print(f"[bold]{path}[/]: {exp}")


@app.command()
def info(model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")]) -> None:
    """Print a saved model's card."""
    from cbm.exceptions import CBMError
    from cbm.model import ConceptBottleneckModel

    try:
        model = ConceptBottleneckModel.load(model_dir)
    except CBMError as err:
        _fail(str(err))
        return
    console.print(f"backbone: {model.backbone['backbone_id']} ({model.backbone['weights_id']})")
    console.print(
        f"concept bank: {model.bank.name} ({len(model.bank)} concepts), "
        f"provenance: {json.dumps(model.bank.provenance)}"
    )
    console.print(f"NEC: {model.nec:.2f}")
    console.print(f"metrics: {json.dumps(model.metrics, indent=2)}")


# Commands of each topic live in their own module (cbm/cli_<topic>.py) exposing
# ``register(app)``; list the module here, one line each.
_EXTENSIONS: tuple[str, ...] = (
    "cbm.cli_audit",
    "cbm.cli_concepts",
    "cbm.cli_interventions",
    "cbm.cli_app",
    "cbm.cli_sae",
    "cbm.cli_data",
    "cbm.cli_benchmark",
)


def _register_extensions() -> None:
    import importlib

    for name in _EXTENSIONS:
        importlib.import_module(name).register(app)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    app()
