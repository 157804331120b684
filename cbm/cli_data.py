"""``cbm embed``: embed a dataset with a backbone, in resumable content-keyed shards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the data commands to the ``cbm`` app."""
    app.command("embed")(embed)


def embed(
    dataset: Annotated[
        str, typer.Option(help="fashion-mnist, cifar10, cifar100, cub, folder or manifest.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the shard files and index.json.")],
    data: Annotated[Path | None, typer.Option(help="Dataset root folder or manifest CSV.")] = None,
    split: Annotated[str | None, typer.Option(help="train, test, ... (default: all).")] = None,
    backbone: Annotated[
        str, typer.Option(help="efficientnet-lite0, hf:<folder>, or an open_clip model name.")
    ] = "shapes-clip-rn",
    pretrained: Annotated[str | None, typer.Option(help="Pretrained tag or weights file.")] = None,
    num_shards: Annotated[int, typer.Option(min=1, help="Shards the data is cut into.")] = 1,
    shard_index: Annotated[
        int | None,
        typer.Option(min=0, help="Embed only this shard (e.g. $SLURM_ARRAY_TASK_ID); default all."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
) -> None:
    """Embed a dataset into shard files; a rerun skips shards that are already done."""
    from rich.console import Console

    from cbm.backbones.factory import open_backbone
    from cbm.backbones.shards import extract_shard
    from cbm.data.catalog import open_dataset
    from cbm.exceptions import CBMError

    console = Console()
    try:
        ds = open_dataset(dataset, data, split)
        bb = open_backbone(backbone, pretrained, device)
        indices = range(num_shards) if shard_index is None else [shard_index]
        for i in indices:
            res = extract_shard(bb, ds, out, num_shards, i, batch_size)
            verb = "embedded" if res.computed else "already done, kept"
            console.print(
                f"shard {i + 1}/{num_shards}: rows {res.rows[0]}-{res.rows[1]} {verb} "
                f"-> {res.path.name}"
            )
            for item in res.skipped:
                console.print(f"[yellow]skipped[/] {item['path']}: {item['reason']}")
    except CBMError as err:
        console.print(f"[bold red]error:[/] {err}")
        raise typer.Exit(code=1) from err
    console.print(f"index: {Path(out) / 'index.json'} ({len(ds)} images, {bb.backbone_id})")
