"""Image files on disk: a class-per-folder tree or a CSV manifest, read lazily in batches.

Nothing is decoded until :meth:`ImageDataset.iter_batches` asks for a batch, so a
dataset of a million files costs a list of paths in memory. An image that cannot be
used is skipped and reported by path with the reason (:attr:`ImageDataset.skipped`),
never fatal: empty files, files that are not images, extensions that are not image
types, truncated or corrupt data, and decompression bombs (Pillow's pixel guard, or a
tighter ``max_pixels`` of ours). Grey, grey+alpha, palette, RGBA, 16-bit and CMYK
images are all converted to 8-bit RGB (alpha composited onto white).
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cbm.exceptions import ValidationError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default guard (about 0.25 GB of RGB)


@dataclass(frozen=True)
class SkippedImage:
    """An image that was left out, and why."""

    path: str
    reason: str
    row: int | None = None  # index in the dataset; None for files left out at scan time


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; alpha is composited onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=1.0))
        grey = ((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode one image file to RGB, or raise ``ValidationError`` saying why not."""
    p = Path(path)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ValidationError(
            f"extension {p.suffix or '(none)'!r} is not an image type "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    try:
        size = p.stat().st_size
    except OSError as err:
        raise ValidationError(f"cannot read file: {err.strerror or err}") from err
    if size == 0:
        raise ValidationError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                if im.width * im.height > max_pixels:
                    raise ValidationError(
                        f"{im.width}x{im.height} pixels exceeds the limit of {max_pixels} "
                        "(possible decompression bomb; raise max_pixels if it is genuine)"
                    )
                im.load()
                return to_rgb(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValidationError(f"decompression bomb guard: {err}") from err
    except UnidentifiedImageError as err:
        raise ValidationError("not a readable image (unknown or corrupt format)") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ValidationError):
            raise
        raise ValidationError(f"corrupt or truncated image: {err}") from err


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()


@dataclass
class ImageDataset:
    """Labelled image files, decoded lazily.

    Parameters
    ----------
    paths
        Image files (absolute, or relative to the working directory).
    labels
        Integer class index per image.
    classes
        Class names; ``labels`` index into them.
    splits
        Optional split name per image (``"train"``, ``"test"``, ...).
    concepts
        Optional ``(n_images, n_concepts)`` 0/1 ground-truth concept matrix.
    concept_names
        Names of the columns of ``concepts``.
    max_pixels
        Images with more pixels are skipped as possible decompression bombs.
    name
        Dataset name for reports.
    """

    paths: list[Path]
    labels: np.ndarray
    classes: tuple[str, ...]
    splits: tuple[str, ...] = ()
    concepts: np.ndarray | None = None
    concept_names: tuple[str, ...] = ()
    max_pixels: int = DEFAULT_MAX_PIXELS
    name: str = "images"
    skipped: list[SkippedImage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = [Path(p) for p in self.paths]
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.paths)
        if self.labels.shape[0] != n:
            raise ValidationError(f"{n} image paths but {self.labels.shape[0]} labels")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValidationError(
                f"labels must lie in [0, {len(self.classes)}) to index the classes"
            )
        if self.splits and len(self.splits) != n:
            raise ValidationError(f"{n} image paths but {len(self.splits)} split names")
        if self.concepts is not None and self.concepts.shape[0] != n:
            raise ValidationError(
                f"{n} image paths but {self.concepts.shape[0]} rows of concept labels"
            )
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> ImageDataset:
        """A dataset with the chosen images, in the given order."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageDataset(
            paths=[self.paths[i] for i in idx],
            labels=self.labels[idx],
            classes=self.classes,
            splits=tuple(self.splits[i] for i in idx) if self.splits else (),
            concepts=None if self.concepts is None else self.concepts[idx],
            concept_names=self.concept_names,
            max_pixels=self.max_pixels,
            name=name or self.name,
        )

    def split(self, name: str) -> ImageDataset:
        """The images of one split, e.g. ``"train"``."""
        if not self.splits:
            raise ValidationError(f"dataset {self.name!r} has no split column")
        idx = [i for i, s in enumerate(self.splits) if s == name]
        if not idx:
            raise ValidationError(
                f"dataset {self.name!r} has no split {name!r}; it has {sorted(set(self.splits))}"
            )
        return self.subset(idx, name=f"{self.name}/{name}")

    def fingerprint(self) -> str:
        """sha256 over every file's bytes and label, in order: the embedding cache key.

        Renaming or moving files keeps the fingerprint; changing a byte, a label or the
        order changes it.
        """
        if self._fingerprint is None:
            h = hashlib.sha256(f"image-dataset:{len(self)}".encode())
            for path, label in zip(self.paths, self.labels.tolist(), strict=True):
                h.update(f"{_file_sha256(path)}:{label};".encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def iter_batches(
        self, batch_size: int = 64, indices: Sequence[int] | np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, list[Image.Image]]]:
        """Yield ``(indices, rgb_images)`` batches of the readable images.

        Unreadable images are left out of the batch and appended to :attr:`skipped`.
        """
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        order = np.arange(len(self)) if indices is None else np.asarray(indices, np.int64)
        for start in range(0, len(order), batch_size):
            kept: list[int] = []
            images: list[Image.Image] = []
            for i in order[start : start + batch_size].tolist():
                try:
                    images.append(read_image(self.paths[i], self.max_pixels))
                    kept.append(i)
                except ValidationError as err:
                    self.skipped.append(SkippedImage(str(self.paths[i]), str(err), i))
            if kept:
                yield np.asarray(kept, dtype=np.int64), images


def from_manifest(
    csv_path: str | Path, root: str | Path | None = None, classes: Sequence[str] | None = None
) -> ImageDataset:
    """Read a CSV manifest with a header ``path,label[,split]``.

    Parameters
    ----------
    csv_path
        The manifest. ``label`` is a class name (or an integer index when ``classes``
        is given); relative paths are resolved against ``root`` (default: the
        manifest's folder).
    root
        Folder that relative paths are relative to.
    classes
        Class names in label order; default: the sorted distinct labels.
    """
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "path" not in fields or "label" not in fields:
            raise ValidationError(
                f"{csv_path}: the header must name the columns path,label[,split]; got {fields}"
            )
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    if not rows:
        raise ValidationError(f"{csv_path} lists no images")
    names = [r["label"] for r in rows]
    if classes is None:
        classes = sorted(set(names))
        labels = [classes.index(n) for n in names]
    else:
        classes = list(classes)
        lookup = {c: i for i, c in enumerate(classes)}
        try:
            labels = [lookup[n] if n in lookup else int(n) for n in names]
        except ValueError as err:
            raise ValidationError(f"{csv_path}: label not among the given classes: {err}") from err
    splits = tuple(r.get("split", "") for r in rows) if "split" in fields else ()
    paths = [p if p.is_absolute() else base / p for p in (Path(r["path"]) for r in rows)]
    return ImageDataset(paths, np.asarray(labels), tuple(classes), splits, name=csv_path.stem)


def from_folder(root: str | Path, name: str | None = None) -> ImageDataset:
    """Read ``root/<class>/<image>`` (ImageNet-style), or ``root/<split>/<class>/<image>``.

    The second layout is recognised when every top-level folder is a known split name
    (train, val, valid, validation, test). Files with non-image extensions are
    reported in :attr:`ImageDataset.skipped` rather than silently ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValidationError(f"image folder {root} does not exist or is not a folder")
    tops = sorted(d for d in root.iterdir() if d.is_dir())
    split_names = {"train", "val", "valid", "validation", "test"}
    has_splits = bool(tops) and all(d.name in split_names for d in tops)
    groups = [(d.name, d) for d in tops] if has_splits else [("", root)]
    class_names = sorted(
        {
            c.name
            for _, g in groups
            for c in g.iterdir()
            if c.is_dir() and not c.name.startswith(".")
        }
    )
    if not class_names:
        raise ValidationError(f"{root} has no class folders (expected root/<class>/<image>)")
    paths: list[Path] = []
    labels: list[int] = []
    splits: list[str] = []
    skipped: list[SkippedImage] = []
    for split, folder in groups:
        for label, cls in enumerate(class_names):
            cdir = folder / cls
            if not cdir.is_dir():
                continue
            for f in sorted(cdir.rglob("*")):
                if not f.is_file() or f.name.startswith("."):
                    continue
                if f.suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append(SkippedImage(str(f), f"extension {f.suffix!r} is not an image"))
                    continue
                paths.append(f)
                labels.append(label)
                splits.append(split)
    ds = ImageDataset(
        paths,
        np.asarray(labels, dtype=np.int64),
        tuple(class_names),
        tuple(splits) if has_splits else (),
        name=name or root.name,
    )
    ds.skipped.extend(skipped)
    return ds
