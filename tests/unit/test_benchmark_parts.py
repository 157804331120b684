"""Pieces of ``cbm benchmark``: published numbers as data, configuration, banks, cells, table."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cbm.benchmark import BenchmarkConfig, Cell, published_results
from cbm.benchmark.published import matching
from cbm.benchmark.report import markdown
from cbm.benchmark.settings import (
    classifier_head_bank,
    load_user_bank,
    reference_bank,
    text_bank_for,
)
from cbm.data.arrays import subsample_indices
from cbm.exceptions import ConfigurationError

REFERENCE = Path("/work/shared/reference")


def test_published_numbers_carry_their_source() -> None:
    results = published_results()
    got = {(r.system, r.dataset, r.nec): r.accuracy for r in results}
    assert got[("VLG-CBM", "cifar10", "5")] == 88.55
    assert got[("VLG-CBM", "imagenet", "5")] == 59.74
    assert got[("LaBo", "cub", "dense")] == 81.9
    assert got[("Discover-then-Name", "imagenet", "dense")] == 79.5
    assert all(r.source and r.backbone for r in results)
    (dn,) = matching("imagenet", "dense", "sae")
    assert dn.backbone == "CLIP ViT-B/16" and "ECCV 2024" in dn.source
    assert matching("shapes", "5", "text") == []


def test_config_checks_and_sizes() -> None:
    with pytest.raises(ConfigurationError, match="unknown datasets"):
        BenchmarkConfig(datasets=("mnist",))
    with pytest.raises(ConfigurationError, match="NEC"):
        BenchmarkConfig(necs=("five",))
    with pytest.raises(ConfigurationError, match="unknown banks"):
        BenchmarkConfig(banks=("llm",))
    cfg = BenchmarkConfig(datasets=("cifar10", "fashion-mnist"))
    assert cfg.sizes("cifar10", cuda=False) == (5000, 2000)
    assert cfg.sizes("cifar10", cuda=True) == (None, None)  # every image on a GPU
    assert BenchmarkConfig(n_train=0, n_test=7).sizes("cub", cuda=False) == (None, 7)
    assert cfg.pairs() == [
        ("cifar10", "ViT-B-16", "openai"),
        ("fashion-mnist", "efficientnet-lite0", None),
    ]
    key = cfg.key("cifar10", "ViT-B-16", "openai", cuda=False)
    assert key != cfg.key("cifar10", "ViT-B-16", "openai", cuda=True)
    assert key != BenchmarkConfig(seed=1).key("cifar10", "ViT-B-16", "openai", cuda=False)


def test_text_banks_and_user_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("Stripes\nstripes\n\nwheels\n")
    bank = load_user_bank(tmp_path / "mine.txt")
    assert len(bank) == 2
    assert text_bank_for("cifar10", tmp_path / "mine.txt", None).name == "mine"
    assert text_bank_for("cub", None, tmp_path).name == "cub200"  # shipped fallback
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_user_bank(tmp_path / "missing.txt")


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is absent")
def test_published_concept_sets_are_read_from_the_reference_folder() -> None:
    for dataset in ("cifar10", "cifar100", "cub", "imagenet"):
        bank = reference_bank(dataset, REFERENCE)
        assert bank is not None and len(bank) > 100
        assert bank.provenance["source"].startswith("Label-free CBM")


def test_classifier_head_bank_keeps_the_most_varying_rows() -> None:
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 4))
    emb = rng.standard_normal((50, 4)) * np.array([5.0, 0.1, 0.1, 0.1])
    bank, rows = classifier_head_bank(W, [f"c{i}" for i in range(6)], emb, 2)
    assert len(bank) == 2 and rows.shape == (2, 4)
    assert np.allclose(rows, W[bank.provenance["imagenet_indices"]])


def test_stratified_subsample_is_balanced_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    idx = subsample_indices(labels, 20, seed=3)
    assert np.bincount(labels[idx]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(idx, subsample_indices(labels, 20, seed=3))
    assert len(subsample_indices(labels, 500)) == 100


def test_cells_round_trip_and_failures_show_in_the_table() -> None:
    ok = Cell("cifar10", "ViT-B-16 (openai)", "5", "text", "ok", accuracy=0.9, nec=5.0)
    ok.random_accuracy, ok.random_nec, ok.n_concepts = 0.8, 5.0, 142
    back = Cell.from_dict(ok.to_dict())
    assert back == ok
    probe = Cell("cifar10", "ViT-B-16 (openai)", "5", "probe", "ok", accuracy=0.95, nec=5.0)
    assert math.isnan(Cell.from_dict(probe.to_dict()).random_accuracy)
    failed = Cell("cub", "ViT-B-16 (openai)", "dense", "sae", "failed", "OSError: disk full")
    md = markdown([ok, probe, failed])
    assert "| cifar10 | ViT-B-16 (openai) | 5 | LLM/text bank | 142 | 90.0 | 5.0 | 80.0 (5.0)" in md
    assert "+10.0" in md and "VLG-CBM 88.55 (CLIP RN50)" in md
    assert "failed: OSError: disk full" in md
