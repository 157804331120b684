"""``cbm benchmark``: the accuracy grid with random controls and published numbers beside."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``cbm benchmark`` to the ``cbm`` app."""
    app.command("benchmark")(benchmark)


def _pair_backbones(
    backbones: list[str], pretrained: list[str]
) -> tuple[tuple[str, str | None], ...]:
    from cbm.exceptions import ConfigurationError

    if not backbones:
        backbones = ["ViT-B-16"]
        pretrained = pretrained or ["openai"]
    if len(pretrained) not in (0, 1, len(backbones)):
        raise ConfigurationError(
            f"give one --pretrained per --backbone ({len(backbones)}), or one for all, "
            f"or none; got {len(pretrained)}"
        )
    tags: list[str | None] = (
        list(pretrained)
        if len(pretrained) == len(backbones)
        else ([pretrained[0] if pretrained else None] * len(backbones))
    )
    return tuple(zip(backbones, tags, strict=True))


def benchmark(
    dataset: Annotated[
        list[str],
        typer.Option(
            help="shapes, fashion-mnist, cifar10, cifar100, cub, imagenet (repeat the option)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for results.csv, results.md and cells/.")] = (
        Path("cbm-benchmark")
    ),
    data_root: Annotated[
        Path | None,
        typer.Option(help="Folder with cifar-10-batches-py/, CUB_200_2011/, imagenet/, ..."),
    ] = None,
    backbone: Annotated[
        list[str] | None,
        typer.Option(
            help="open_clip model (ViT-B-16, ViT-L-14, RN50, ...), hf:<folder> or "
            "efficientnet-lite0, for cifar/cub/imagenet (repeat for several; default ViT-B-16)."
        ),
    ] = None,
    pretrained: Annotated[
        list[str] | None,
        typer.Option(
            help="Tag (openai, laion2b_s34b_b88k, ...) or checkpoint file per "
            "--backbone; 'none' for random weights."
        ),
    ] = None,
    nec: Annotated[
        list[str] | None, typer.Option(help="Target NECs: numbers or 'dense' (default 5 30 dense).")
    ] = None,
    bank: Annotated[
        list[str] | None, typer.Option(help="Rows: text, sae, random, probe (default all).")
    ] = None,
    bank_file: Annotated[
        Path | None, typer.Option(help="Text bank (JSON bank or one concept per line).")
    ] = None,
    reference_dir: Annotated[
        Path | None,
        typer.Option(help="Published concept sets (default: ../shared/reference when present)."),
    ] = None,
    vocabulary: Annotated[
        str, typer.Option(help="Names for SAE latents: words, bank:NAME, bank.json or words.txt.")
    ] = "words",
    n_train: Annotated[
        int | None,
        typer.Option(min=0, help="Training images (default: CPU size, all on CUDA; 0 = all)."),
    ] = None,
    n_test: Annotated[int | None, typer.Option(min=0, help="Test images (as --n-train).")] = None,
    sae_latents: Annotated[int | None, typer.Option(min=1, help="SAE latents.")] = None,
    sae_epochs: Annotated[float | None, typer.Option(min=0.01, help="SAE epochs.")] = None,
    head_lambdas: Annotated[
        int, typer.Option(min=1, help="Regularisation-path points of the sparse head.")
    ] = 100,
    threads: Annotated[
        int, typer.Option(min=0, help="CPU threads for torch/BLAS (0: leave as set).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Subsample, SAE and random-bank seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder.")] = None,
) -> None:
    """Accuracy of CBMs on LLM/text, SAE and random banks vs a linear probe, per dataset,
    backbone and NEC, with published numbers beside; finished cells are kept (resume)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cbm.benchmark import BenchmarkConfig, Cell, plan, run_benchmark
    from cbm.exceptions import CBMError

    console = Console()
    try:
        cfg = BenchmarkConfig(
            datasets=tuple(dataset),
            backbones=_pair_backbones(backbone or [], pretrained or []),
            necs=tuple(nec or ("5", "30", "dense")),
            banks=tuple(bank or ("text", "sae", "random", "probe")),
            data_root=data_root,
            reference_dir=reference_dir,
            bank_file=bank_file,
            vocabulary=vocabulary,
            n_train=n_train,
            n_test=n_test,
            sae_latents=sae_latents,
            sae_epochs=sae_epochs,
            head_lambdas=head_lambdas,
            threads=threads or None,
            seed=seed,
            device=device,
            batch_size=batch_size,
            cache_dir=cache_dir,
        )
    except CBMError as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(code=1) from err
    total = sum(len(cells) for _, cells in plan(cfg, cuda=False))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("benchmark cells", total=total)

        def on_cell(cell: Cell) -> None:
            mark = {"ok": "[green]ok[/]", "n/a": "[yellow]n/a[/]"}.get(
                cell.status, "[red]failed[/]"
            )
            acc = f" {100 * cell.accuracy:.1f}%" if cell.status == "ok" else f": {cell.reason}"
            bar.console.print(
                f"{mark} {cell.dataset} | {cell.backbone} | NEC {cell.nec_target} | "
                f"{cell.bank}{acc}"
            )
            bar.advance(task)

        called = Path(sys.argv[0]).name == "cbm"  # not when run inside another program
        command = shlex.join(["cbm", *sys.argv[1:]]) if called else ""
        cells, csv_path, md_path = run_benchmark(cfg, out, on_cell, command=command)
    failed = [c for c in cells if c.status == "failed"]
    console.print(f"wrote [bold]{csv_path}[/] and [bold]{md_path}[/] ({len(cells)} cells)")
    if failed:
        console.print(
            f"[red]{len(failed)} cell(s) failed[/] (reasons in the table); rerun the same "
            "command to retry them, finished cells are kept"
        )
        raise typer.Exit(code=2)
