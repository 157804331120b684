"""``cbm concepts generate | filter | show``: concept banks from the command line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from cbm.concepts.bank import ConceptBank

console = Console()
concepts_app = typer.Typer(help="Concept banks: generate with an LLM or WordNet, filter, show.")


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=1)


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        _fail(f"{path} does not exist; give a text file with one class name per line")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _load_bank(spec: str) -> ConceptBank:
    from cbm.concepts import ConceptBank

    return ConceptBank.load(spec)  # JSON, hand-written .txt or shipped name


@concepts_app.command()
def generate(
    classes: Annotated[Path, typer.Argument(help="Text file, one class name per line.")],
    out: Annotated[Path, typer.Option(help="Bank JSON to write.")] = Path("concepts.json"),
    name: Annotated[str, typer.Option(help="Bank name.")] = "my-concepts",
    backend: Annotated[str, typer.Option(help="openai, transformers or wordnet.")] = "openai",
    model: Annotated[str, typer.Option(help="Model name (openai) or path (transformers).")] = "",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    ] = None,
    api_key_env: Annotated[str, typer.Option(help="Env variable holding the key.")] = (
        "OPENAI_API_KEY"
    ),
    template: Annotated[
        list[str] | None, typer.Option(help="Prompt template (repeatable).")
    ] = None,
    temperature: Annotated[float, typer.Option()] = 0.0,
    max_tokens: Annotated[int, typer.Option()] = 400,
    cache_dir: Annotated[Path, typer.Option(help="Answer cache folder.")] = Path(".cbm-cache/llm"),
    descriptions: Annotated[
        Path | None, typer.Option(help="TSV file 'class<TAB>description' to disambiguate.")
    ] = None,
) -> None:
    """Write a concept bank for your classes, asking an LLM (cached) or WordNet."""
    from cbm.concepts.generate import generate_concepts
    from cbm.concepts.llm import OpenAIChatClient, TransformersClient
    from cbm.concepts.sources import wordnet_bank
    from cbm.concepts.templates import DEFAULT_TEMPLATES
    from cbm.exceptions import CBMError

    names = _read_lines(classes)
    try:
        if backend == "wordnet":
            bank = wordnet_bank(names, name=name)
        else:
            if not model:
                _fail("give --model (a model name for openai, a local path for transformers)")
            client: OpenAIChatClient | TransformersClient
            if backend == "openai":
                client = OpenAIChatClient(
                    model, base_url, api_key_env, temperature=temperature, max_tokens=max_tokens
                )
            elif backend == "transformers":
                client = TransformersClient(
                    model, max_new_tokens=max_tokens, temperature=temperature
                )
            else:
                _fail(f"unknown backend {backend!r}; use openai, transformers or wordnet")
                return
            desc = {}
            if descriptions is not None:
                for line in _read_lines(descriptions):
                    cls, _, text = line.partition("\t")
                    desc[cls.strip()] = text.strip()
            result = generate_concepts(
                names, client, template or DEFAULT_TEMPLATES, cache_dir, desc, progress=True
            )
            for f in result.failures:
                console.print(f"[yellow]skipped[/] {f['class']} / {f['template']}: {f['reason']}")
            console.print(
                f"{result.requests_sent} requests sent, {result.cache_hits} answers from "
                f"the cache ({cache_dir})"
            )
            bank = result.to_bank(name)
    except CBMError as err:
        _fail(str(err))
        return
    bank.save(out)
    console.print(f"wrote [bold]{out}[/]: {len(bank)} concepts for {len(names)} classes")


@concepts_app.command("filter")
def filter_cmd(
    bank: Annotated[str, typer.Argument(help="Bank JSON, hand-written .txt, or shipped name.")],
    classes: Annotated[
        Path | None, typer.Option(help="Class names file, for the class-similarity step.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Filtered bank JSON to write.")] = Path(
        "concepts-filtered.json"
    ),
    max_chars: Annotated[int, typer.Option(help="Length limit (0: no limit).")] = 30,
    class_sim: Annotated[float, typer.Option(help="Max similarity to a class name.")] = 0.85,
    dup_sim: Annotated[float, typer.Option(help="Max similarity between concepts.")] = 0.9,
    budget: Annotated[
        int, typer.Option(help="Then select this many, discriminative and diverse (0: all).")
    ] = 0,
    show: Annotated[int, typer.Option(help="Removed concepts to list per step.")] = 5,
) -> None:
    """Filter a bank (length, class-name similarity, near-duplicates), optionally select."""
    from cbm.concepts.embed import MiniLMEmbedder
    from cbm.concepts.filters import (
        FilterStep,
        MaxLength,
        NearDuplicates,
        TooSimilarToClass,
        filter_bank,
    )
    from cbm.concepts.select import select_bank
    from cbm.exceptions import CBMError

    try:
        source = _load_bank(bank)
        embedder = MiniLMEmbedder()
        steps: list[FilterStep] = [MaxLength(max_chars)] if max_chars else []
        if classes is not None:
            steps.append(TooSimilarToClass(_read_lines(classes), embedder, class_sim))
        steps.append(NearDuplicates(embedder, dup_sim))
        filtered, report = filter_bank(source, steps)
        kept = len(filtered)
        if budget:
            filtered = select_bank(filtered, embedder, budget)
    except CBMError as err:
        _fail(str(err))
        return
    table = Table(title=f"filtering {source.name} ({len(source)} concepts)")
    for col in ("step", "in", "out", "examples removed (reason)"):
        table.add_column(col)
    for (step, n_in, n_out), removed in zip(report.counts, report.by_step().values(), strict=True):
        examples = "\n".join(f"{r.concept} ({r.reason})" for r in removed[:show])
        table.add_row(step, str(n_in), str(n_out), examples)
    console.print(table)
    filtered.save(out)
    extra = f" ({kept} after filtering, selected with budget {budget})" if budget else ""
    console.print(f"wrote [bold]{out}[/]: {len(filtered)} concepts{extra}")


@concepts_app.command("show")
def show_cmd(
    bank: Annotated[str, typer.Argument(help="Bank JSON, hand-written .txt, or shipped name.")],
    limit: Annotated[int, typer.Option(help="Concepts to list (0: all).")] = 30,
) -> None:
    """Print a bank: provenance, groups and concepts."""
    from cbm.exceptions import CBMError

    try:
        b = _load_bank(bank)
    except CBMError as err:
        _fail(str(err))
        return
    console.print(f"[bold]{b.name}[/] v{b.version}: {len(b)} concepts")
    for key, value in b.provenance.items():
        if key != "concept_classes":
            console.print(f"  {key}: {value}")
    if b.groups:
        console.print("  groups: " + ", ".join(f"{g} ({n})" for g, n in Counter(b.groups).items()))
    classes = b.provenance.get("concept_classes", {})
    table = Table(show_header=True)
    for col in ("#", "concept", "group", "prompt", "classes"):
        table.add_column(col)
    n = len(b) if limit == 0 else min(limit, len(b))
    for i in range(n):
        cls = ", ".join(classes.get(b.concepts[i], [])[:3])
        table.add_row(str(i), b.concepts[i], b.groups[i] if b.groups else "", b.prompts[i], cls)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``cbm concepts ...`` to the main command."""
    app.add_typer(concepts_app, name="concepts")
