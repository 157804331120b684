"""Fashion-MNIST (Debian's files), CIFAR binary releases and CUB-200 folders."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbm.data import load_cifar, load_cub, load_fashion_mnist
from cbm.data.arrays import FASHION_MNIST_DIR
from cbm.exceptions import ConfigurationError


def _idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_reader(tmp_path: Path) -> None:
    imgs = np.arange(5 * 28 * 28).reshape(5, 28, 28) % 256
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 0, 3, 1]))
    ds = load_fashion_mnist(tmp_path, "test", limit=4)
    assert ds.images.shape == (4, 28, 28, 3) and ds.images.dtype == np.uint8
    assert (ds.images[..., 1] == imgs[:4]).all()
    assert ds.labels.tolist() == [9, 0, 0, 3] and ds.classes[9] == "ankle boot"
    with pytest.raises(ConfigurationError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path, "train")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist() -> None:
    test = load_fashion_mnist(split="test")
    assert len(test) == 10_000 and np.bincount(test.labels).tolist() == [1000] * 10
    small = test.subsample(50, seed=1)
    assert len(small) == 50 and np.bincount(small.labels).tolist() == [5] * 10
    assert small.fingerprint() != test.subsample(50, seed=2).fingerprint()


def test_cifar10_binary_release(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        recs = rng.integers(0, 256, (3, 1 + 3072), dtype=np.uint8)
        recs[:, 0] %= 10
        recs.tofile(folder / name)
        batches.append(recs)
    train = load_cifar(tmp_path, "cifar10", "train")
    assert train.images.shape == (15, 32, 32, 3) and train.classes[0] == "airplane"
    first = batches[0][0]
    assert train.labels[0] == first[0]
    # channel-major records: red plane, then green, then blue
    assert train.images[0, 0, 1, 0] == first[1 + 1]
    assert train.images[0, 0, 0, 2] == first[1 + 2048]
    assert len(load_cifar(tmp_path, "cifar10", "test")) == 3


def test_cifar100_binary_coarse_and_fine(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    recs = np.zeros((4, 2 + 3072), np.uint8)
    recs[:, 0] = [1, 2, 3, 4]
    recs[:, 1] = [10, 20, 30, 40]
    recs.tofile(folder / "test.bin")
    (folder / "fine_label_names.txt").write_text("\n".join(f"f{i}" for i in range(100)))
    (folder / "coarse_label_names.txt").write_text("\n".join(f"c{i}" for i in range(20)))
    fine = load_cifar(tmp_path, "cifar100", "test")
    assert fine.labels.tolist() == [10, 20, 30, 40] and len(fine.classes) == 100
    assert load_cifar(tmp_path, "cifar100", "test", fine=False).labels.tolist() == [1, 2, 3, 4]


def test_cifar_absent_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cifar-10-batches-bin"):
        load_cifar(tmp_path, "cifar10")


def _fake_cub(tmp_path: Path) -> Path:
    root = tmp_path / "CUB_200_2011"
    files = {1: "001.Black_footed_Albatross/a.jpg", 2: "002.Laysan_Albatross/b.jpg"}
    files[3] = "002.Laysan_Albatross/c.jpg"
    for rel in files.values():
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 10, 10)).save(root / "images" / rel)
    (root / "images.txt").write_text("".join(f"{i} {p}\n" for i, p in files.items()))
    (root / "image_class_labels.txt").write_text("1 1\n2 2\n3 2\n")
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    (tmp_path / "attributes.txt").write_text(
        "1 has_bill_shape::curved\n2 has_wing_color::blue\n3 has_size::small\n"
    )
    (root / "attributes").mkdir()
    lines = ["1 1 1 3 1.0", "1 2 0 1 2.0", "1 3 1 4 3.0 extra", "2 2 1 3 1.0", "3 3 1 2 0.5"]
    (root / "attributes" / "image_attribute_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def test_cub_layout_with_attribute_concepts(tmp_path: Path) -> None:
    root = _fake_cub(tmp_path)
    ds = load_cub(root)
    assert ds.classes == ("Black footed Albatross", "Laysan Albatross")
    assert ds.labels.tolist() == [0, 1, 1] and ds.splits == ("train", "test", "train")
    assert ds.concept_names == ("has_bill_shape::curved", "has_wing_color::blue", "has_size::small")
    assert ds.concepts is not None
    assert ds.concepts.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    train = load_cub(root, split="train")
    assert (
        len(train) == 2 and train.concepts is not None and train.concepts[1].tolist() == [0, 0, 1]
    )
    idx, images = next(train.iter_batches())
    assert idx.tolist() == [0, 1] and images[0].size == (8, 8)


def test_cub_missing_files(tmp_path: Path) -> None:
    root = _fake_cub(tmp_path)
    (root / "attributes" / "image_attribute_labels.txt").unlink()
    assert load_cub(root, attributes=False).concepts is None
    with pytest.raises(ConfigurationError, match="attributes=False"):
        load_cub(root)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_cub(tmp_path / "nope")
