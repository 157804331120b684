"""``cbm intervene``: fix predictions by correcting concepts, and compare strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def world_from_config(config: dict[str, Any], noise: float | None = None) -> Any:
    """Rebuild the shapes world a model was trained on from its model card."""
    from cbm.data.shapes import ClassRule, ShapesWorld, Shortcut

    rules = tuple(
        ClassRule(r["name"], {k: tuple(v) for k, v in r["allowed"].items()})
        for r in config["rules"]
    )
    shortcut = Shortcut(**config["shortcut"]) if config.get("shortcut") else None
    return ShapesWorld(
        rules,
        image_size=int(config["image_size"]),
        seed=int(config["seed"]),
        noise=float(config["noise"] if noise is None else noise),
        shortcut=shortcut,
    )


def _backbone(model: Any, device: str) -> Any:
    from cbm.backbones.factory import reopen_backbone
    from cbm.exceptions import CBMError

    try:
        return reopen_backbone(model.backbone, device)
    except CBMError as err:
        _fail(str(err))


def _parse_edit(text: str) -> Any:
    from cbm.interventions import Edit

    name, _, rest = text.partition("=")
    op, _, value = rest.partition(":")
    if not name or not op:
        _fail(
            f"--set expects CONCEPT=OP[:VALUE] (e.g. 'red=present', 'circle=scale:0.5'): {text!r}"
        )
    return Edit(name.strip(), op.strip(), float(value) if value else None)  # type: ignore[arg-type]


def _values(model: Any, backbone: Any, kind: str) -> tuple[Any, str]:
    """Intervention values from the model's training split, or a Gaussian fallback."""
    from cbm.backbones import EmbeddingCache, embed_images
    from cbm.interventions import InterventionValues

    training = model.training
    if training.get("dataset") == "shapes" and "world" in training:
        world = world_from_config(training["world"])
        train = world.sample(int(training["n_train"]), training.get("split_train", "train"))
        scores = model.concept_scores(embed_images(backbone, train.images, EmbeddingCache()))
        if kind == "truth":
            return InterventionValues.from_ground_truth(scores, train.concepts), "training truth"
        return InterventionValues.from_percentiles(scores), "training percentiles 5/95"
    k = len(model.bank)
    # Standardised scores: the 5th/95th percentiles of a standard normal.
    return (
        InterventionValues(np.full(k, 1.645), np.full(k, -1.645), np.zeros(k), "normal 5/95"),
        "standard-normal percentiles (training split unknown)",
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def intervene(
        model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
        images: Annotated[list[Path] | None, typer.Argument(help="Image files.")] = None,
        strategy: Annotated[str, typer.Option(help="rand/ucp/lcp/cctp/ectp/eudtp or all.")] = "all",
        budget: Annotated[int, typer.Option(min=0, help="Interventions per image.")] = 3,
        granularity: Annotated[str, typer.Option(help="concept or group.")] = "concept",
        group_outcomes: Annotated[
            str,
            typer.Option(help="Groups: exclusive (one member true, e.g. colour) or independent."),
        ] = "exclusive",
        split: Annotated[str, typer.Option(help="Shapes-world split to evaluate.")] = "test",
        n: Annotated[int, typer.Option(min=1, help="Images of the split.")] = 1000,
        noise: Annotated[
            float | None, typer.Option(help="Pixel noise of the split (deployment shift).")
        ] = None,
        values: Annotated[str, typer.Option(help="truth or percentiles.")] = "truth",
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Edit CONCEPT=OP[:VALUE], repeatable.")
        ] = None,
        ask: Annotated[bool, typer.Option(help="Ask about the chosen concepts.")] = False,
        device: Annotated[str, typer.Option()] = "auto",
    ) -> None:
        """Intervene on concepts: one image's before/after, or a split's error per strategy."""
        from cbm.exceptions import CBMError
        from cbm.interventions import STRATEGIES, Intervener
        from cbm.interventions.groups import check_group_outcomes
        from cbm.interventions.strategies import check_strategy
        from cbm.model import ConceptBottleneckModel

        if values not in ("truth", "percentiles"):
            _fail(f"--values must be 'truth' or 'percentiles', got {values!r}")
        try:
            if strategy != "all":
                strategy = check_strategy(strategy)
            check_group_outcomes(group_outcomes)
            model = ConceptBottleneckModel.load(model_dir)
            backbone = _backbone(model, device)
            vals, how = _values(model, backbone, "truth" if values == "truth" else "pct")
            iv = Intervener(model, vals, granularity=granularity, group_outcomes=group_outcomes)
            names = list(STRATEGIES) if strategy == "all" else [strategy]
            if images:
                pick = "ectp" if strategy == "all" else strategy
                _images(model, backbone, iv, images, pick, budget, set_ or [], ask)
            else:
                _split(model, backbone, iv, names, budget, split, n, noise, how)
        except CBMError as err:
            _fail(str(err))


def _images(
    model: Any,
    backbone: Any,
    iv: Any,
    paths: list[Path],
    strategy: str,
    budget: int,
    sets: list[str],
    ask: bool,
) -> None:
    from PIL import Image, UnidentifiedImageError

    from cbm.interventions import Edit, edit_prediction

    fixed = [_parse_edit(s) for s in sets]
    for path in paths:
        try:
            with Image.open(path) as im:
                emb = backbone.encode_images([im.convert("RGB")])
        except (OSError, UnidentifiedImageError) as err:
            console.print(f"[yellow]skipped[/] {path}: {err}")
            continue
        scores = model.concept_scores(emb)
        sel = iv.select(scores, strategy, budget)
        console.print(f"[bold]{path}[/]: {strategy} would ask about: {', '.join(sel.names(0))}")
        edits = list(fixed)
        for unit in sel.order[0]:
            for j in np.flatnonzero(iv.units.membership[unit]):
                if ask:
                    answer = typer.prompt(f"  is '{model.bank.concepts[j]}' present? [y/n/skip]")
                    if answer.lower() in ("y", "n"):
                        edits.append(Edit(int(j), "present" if answer.lower() == "y" else "absent"))
        result = edit_prediction(model, scores, edits, iv.values)
        console.print(f"  before -> after: {result.summary()}")


def _split(
    model: Any,
    backbone: Any,
    iv: Any,
    strategies: list[str],
    budget: int,
    split: str,
    n: int,
    noise: float | None,
    how: str,
) -> None:
    from cbm.backbones import EmbeddingCache, embed_images
    from cbm.interventions import curve_auc

    training = model.training
    if training.get("dataset") != "shapes":
        _fail("this model was not trained on the shapes world; give image files instead")
    world = world_from_config(training["world"], noise)
    batch = world.sample(n, split)
    scores = model.concept_scores(embed_images(backbone, batch.images, EmbeddingCache()))
    targets = iv.values.targets(batch.concepts)
    table = Table(
        title=f"shapes world split {split!r} ({n} images, noise {world.noise:g}), "
        f"{budget} {iv.granularity} interventions per image with true values ({how})"
    )
    for col in ("strategy", "error before", "error after", "AUC (full curve)"):
        table.add_column(col, justify="right")
    for name in strategies:
        full = iv.select(scores, name, len(iv.units), targets, batch.labels)
        errors = full.errors
        table.add_row(
            name,
            f"{errors[0]:.1%}",
            f"{errors[min(budget, len(errors) - 1)]:.1%}",
            f"{curve_auc(errors):.4f}",
        )
    console.print(table)
