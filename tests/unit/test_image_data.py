"""Image folders and manifests: lazy batches, every kind of bad file skipped and named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cbm.data import ImageDataset, from_folder, from_manifest, read_image
from cbm.exceptions import ValidationError


def _save(path: Path, im: Image.Image, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt)
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(3):
            arr = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
            _save(root / cls / f"{i}.png", Image.fromarray(arr))
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage" * 10)
    png = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "truncated.png").write_bytes(png[: len(png) // 2])
    return root


def test_folder_scan_and_skips_reported_by_path(folder: Path) -> None:
    ds = from_folder(folder)
    assert ds.classes == ("cat", "dog")
    assert any(s.path.endswith("notes.txt") for s in ds.skipped)  # reported at scan time
    seen = []
    for idx, images in ds.iter_batches(batch_size=4):
        assert len(idx) == len(images)
        assert all(im.mode == "RGB" for im in images)
        seen.extend(idx.tolist())
    reasons = {Path(s.path).name: s.reason for s in ds.skipped}
    assert "empty" in reasons["empty.jpg"]
    assert "corrupt.jpg" in reasons and "truncated.png" in reasons
    assert len(seen) == 6
    assert sorted(ds.labels[seen].tolist()) == [0, 0, 0, 1, 1, 1]


def test_modes_converted_to_rgb(tmp_path: Path) -> None:
    grey = _save(tmp_path / "g.png", Image.new("L", (4, 4), 100))
    rgba = _save(tmp_path / "a.png", Image.new("RGBA", (4, 4), (255, 0, 0, 0)))
    deep = np.full((4, 4), 65535, np.uint16)
    sixteen = _save(tmp_path / "d.png", Image.fromarray(deep))
    cmyk = _save(tmp_path / "c.jpg", Image.new("CMYK", (4, 4), (0, 255, 255, 0)))
    assert np.asarray(read_image(grey))[0, 0].tolist() == [100, 100, 100]
    assert np.asarray(read_image(rgba))[0, 0].tolist() == [255, 255, 255]  # on white
    assert np.asarray(read_image(sixteen))[0, 0].tolist() == [255, 255, 255]
    red = np.asarray(read_image(cmyk))[0, 0]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_decompression_bombs_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = _save(tmp_path / "big.png", Image.new("RGB", (64, 64)))
    with pytest.raises(ValidationError, match="decompression bomb"):
        read_image(big, max_pixels=1000)
    # Pillow's own guard (warning and error levels) is turned into a skip as well.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)
    with pytest.raises(ValidationError, match="decompression bomb"):
        read_image(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValidationError, match="decompression bomb"):
        read_image(big)


def test_wrong_extension_and_missing_file(tmp_path: Path) -> None:
    txt = tmp_path / "x.txt"
    txt.write_text("hi")
    with pytest.raises(ValidationError, match="not an image type"):
        read_image(txt)
    with pytest.raises(ValidationError, match="cannot read"):
        read_image(tmp_path / "missing.png")


def test_manifest_with_splits_and_fingerprint(folder: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,split\n"
        f"{folder}/cat/0.png,cat,train\n"
        "imgs/dog/1.png,dog,train\n"
        "imgs/dog/2.png,dog,test\n"
        "imgs/missing.png,dog,test\n"
    )
    ds = from_manifest(manifest)
    assert ds.classes == ("cat", "dog") and ds.labels.tolist() == [0, 1, 1, 1]
    test = ds.split("test")
    assert len(test) == 2
    batches = list(test.iter_batches())
    assert [i.tolist() for i, _ in batches] == [[0]]
    assert test.skipped[0].path.endswith("missing.png")
    fp = ds.fingerprint()
    assert fp == from_manifest(manifest).fingerprint()
    (folder / "dog" / "2.png").write_bytes((folder / "cat" / "0.png").read_bytes())
    assert from_manifest(manifest).fingerprint() != fp  # content, not names, is hashed


def test_manifest_errors_name_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.png,cat\n")
    with pytest.raises(ValidationError, match="path,label"):
        from_manifest(bad)
    with pytest.raises(ValidationError, match="labels"):
        ImageDataset([Path("a.png")], np.array([3]), ("cat",))


def test_split_layout(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for cls in ("a", "b"):
            _save(tmp_path / split / cls / "x.png", Image.new("RGB", (3, 3)))
    ds = from_folder(tmp_path)
    assert ds.classes == ("a", "b")
    assert len(ds.split("train")) == 2 and len(ds.split("val")) == 2
