"""``cbm sae train | name | inspect | shapes``: sparse-autoencoder concepts from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
sae_app = typer.Typer(help="Discover concepts with a sparse autoencoder, name them, inspect them.")


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


@sae_app.command("train")
def train(
    embeddings: Annotated[
        Path, typer.Argument(help="(n, dim) float .npy file; memory-mapped, never fully loaded.")
    ],
    out: Annotated[Path, typer.Option(help="SAE directory to write.")] = Path("cbm-sae"),
    n_latents: Annotated[int, typer.Option(min=1)] = 256,
    activation: Annotated[str, typer.Option(help="topk or relu.")] = "topk",
    k: Annotated[int, typer.Option(min=1, help="Active latents (topk).")] = 8,
    l1: Annotated[float, typer.Option(min=0.0, help="L1 weight (relu).")] = 0.03,
    epochs: Annotated[float, typer.Option(min=0.01)] = 30.0,
    batch_size: Annotated[int, typer.Option(min=1)] = 1024,
    max_samples: Annotated[
        int, typer.Option(min=0, help="Subsample rows (0: all; the GPU setting).")
    ] = 200_000,
    precision: Annotated[str, typer.Option(help="float32 or bfloat16.")] = "float32",
    device: Annotated[str, typer.Option()] = "auto",
    threads: Annotated[int, typer.Option(min=1, help="CPU threads.")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train an SAE on saved embeddings and print its report."""
    import numpy as np

    from cbm.concepts.sae import SparseAutoencoder
    from cbm.exceptions import CBMError

    try:
        X = np.load(embeddings, mmap_mode="r", allow_pickle=False)
        sae = SparseAutoencoder(
            n_latents=n_latents,
            activation=activation,
            k=k,
            l1_coeff=l1,
            epochs=epochs,
            batch_size=batch_size,
            max_samples=max_samples or None,
            precision=precision,
            device=device,
            n_threads=threads,
            seed=seed,
            progress=True,
        ).fit(X)
        sae.save(out)
    except (CBMError, OSError, ValueError) as err:
        _fail(str(err))
        return
    _print_report(sae.report_)
    console.print(f"saved SAE to [bold]{out}[/]; name its latents with: cbm sae name {out}")


def _print_report(report: dict[str, float]) -> None:
    table = Table(title="SAE report (training subsample)")
    for key in report:
        table.add_column(key, justify="right")
    table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in report.values()))
    console.print(table)


@sae_app.command("name")
def name(
    sae_dir: Annotated[Path, typer.Argument(help="A directory written by cbm sae train.")],
    vocabulary: Annotated[
        str, typer.Option(help="'words' (shipped list), 'bank:NAME', a bank .json or a .txt file.")
    ] = "words",
    template: Annotated[
        str, typer.Option(help="Text around each word, e.g. 'a photo of {}'.")
    ] = "{}",
    model_name: Annotated[str, typer.Option(help="open_clip model of the embeddings.")] = (
        "shapes-clip-rn"
    ),
    pretrained: Annotated[str | None, typer.Option(help="Pretrained tag or checkpoint.")] = None,
    min_score: Annotated[float, typer.Option(help="Weak-match threshold (cosine).")] = 0.3,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Name every latent by its closest vocabulary texts; writes SAE_DIR/names.json."""
    from cbm.backbones import OpenCLIPBackbone
    from cbm.concepts.naming import Vocabulary, name_with_backbone
    from cbm.concepts.sae import SparseAutoencoder
    from cbm.exceptions import CBMError

    try:
        sae = SparseAutoencoder.load(sae_dir, device="cpu")
        vocab = Vocabulary.load(vocabulary, template=template)
        backbone = OpenCLIPBackbone(model_name, pretrained=pretrained, device=device)
        names = name_with_backbone(sae.decoder_directions_, backbone, vocab, min_score=min_score)
        names.to_bank(f"{sae_dir.name}-latents").save(sae_dir / "names.json")
    except CBMError as err:
        _fail(str(err))
        return
    console.print(
        f"named {len(names.best)} latents with {len(vocab.entries)} entries of "
        f"{vocab.name!r}; {int(names.weak.sum())} weak; wrote {sae_dir / 'names.json'}"
    )


@sae_app.command("inspect")
def inspect(
    sae_dir: Annotated[Path, typer.Argument(help="A directory written by cbm sae train.")],
    top: Annotated[int, typer.Option(min=1, help="Latents to list.")] = 20,
) -> None:
    """Print the SAE's report, loss curve summary and (if named) its latents' names."""
    from cbm.concepts.bank import ConceptBank
    from cbm.concepts.sae import SparseAutoencoder
    from cbm.exceptions import CBMError

    try:
        sae = SparseAutoencoder.load(sae_dir, device="cpu")
    except CBMError as err:
        _fail(str(err))
        return
    params = sae.get_params()
    console.print(
        f"{sae.n_latents} latents over {sae.n_features_in_}-d embeddings, "
        f"{params['activation']}"
        + (f" k={params['k']}" if params["activation"] == "topk" else f" l1={params['l1_coeff']}")
    )
    _print_report(sae.report_)
    curve = sae.loss_curve_
    if curve:
        console.print(f"loss: first {curve[0]:.4f}, last {curve[-1]:.4f} ({len(curve)} points)")
    names_path = sae_dir / "names.json"
    if not names_path.is_file():
        console.print(f"no names yet: cbm sae name {sae_dir}")
        return
    bank = ConceptBank.load(names_path)
    prov = bank.provenance
    table = Table(title=f"latent names ({prov.get('method')}, vocabulary {prov.get('vocabulary')})")
    for col in ("latent", "name", "top-3 (cosine)", "weak"):
        table.add_column(col)
    rows = zip(
        prov["latents"],
        bank.concepts,
        prov["top_names"],
        prov["top_scores"],
        prov["weak"],
        strict=True,
    )
    for j, concept, names, scores, weak in list(rows)[:top]:
        alt = ", ".join(f"{n} {s:.2f}" for n, s in zip(names, scores, strict=True))
        table.add_row(str(j), concept, alt, "weak" if weak else "")
    console.print(table)


@sae_app.command("shapes")
def shapes(
    n_train: Annotated[int, typer.Option(min=100)] = 3000,
    n_test: Annotated[int, typer.Option(min=100)] = 1500,
    seed: Annotated[int, typer.Option()] = 0,
    nec: Annotated[float, typer.Option(min=0.1)] = 5.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report.")] = None,
) -> None:
    """Shapes world: SAE concept recovery and the SAE-concept CBM beside its controls."""
    import torch

    from cbm.io import write_json
    from cbm.sae_pipeline import run_sae_shapes, shapes_sae

    torch.set_num_threads(1)
    report = run_sae_shapes(n_train, n_test, seed, nec, shapes_sae(device="cpu", n_threads=1))
    for key in ("recovery_words", "recovery_bank"):
        rec = getattr(report, key)
        console.print(
            f"{key}: recovered (AUROC >= 0.9) {rec['recovered_fraction']:.0%}, "
            f"recovered and correctly named {rec['recovered_and_named_fraction']:.0%}"
        )
    table = Table(title=f"{report.dataset}, {report.backbone}, test accuracy")
    for col in ("model", "concepts", "accuracy", "NEC"):
        table.add_column(col)
    for model, r in report.accuracy.items():
        table.add_row(model, f"{r['n_concepts']:.0f}", f"{r['accuracy']:.1%}", f"{r['nec']:.2f}")
    console.print(table)
    if json_out is not None:
        write_json(json_out, report.to_dict())


def register(app: typer.Typer) -> None:
    """Add ``cbm sae ...`` to the main command."""
    app.add_typer(sae_app, name="sae")
