"""What the Streamlit workbench needs that is not layout: finding, describing and
loading models, their evaluation split, and user uploads.

Everything here is plain Python over the public ``cbm`` API, so it is unit-tested
without Streamlit and reusable from notebooks. The pages in ``app/`` only lay out
widgets and call these functions.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cbm.exceptions import ArtefactError, CBMError, ValidationError
from cbm.io import read_arrays, read_json, write_arrays
from cbm.model import KIND, ConceptBottleneckModel

EVALUATION_FILE = "evaluation.safetensors"
"""Optional file in a model directory: the evaluation split as arrays (``embeddings``,
``labels``, optionally ``images`` and ground-truth ``concepts``), for models whose data
cannot be regenerated."""

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096
UPLOAD_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff")


# -- finding and describing models ----------------------------------------------------------
def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a saved :class:`ConceptBottleneckModel` (by its config kind)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file() or not (Path(path) / "model.safetensors").is_file():
        return False
    try:
        config = read_json(cfg)
    except ArtefactError:
        return False
    return isinstance(config, dict) and config.get("kind") == KIND


def list_model_dirs(root: str | Path, max_depth: int = 2) -> list[Path]:
    """Saved model directories at or below ``root`` (at most ``max_depth`` levels), sorted.

    A missing root gives an empty list; unreadable folders are skipped.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    found: list[Path] = []
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for folder in frontier:
            if is_model_dir(folder):
                found.append(folder)
                continue
            try:
                nxt.extend(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        frontier = nxt
    return sorted(found)


@dataclass
class ModelCard:
    """The facts a reader needs before trusting a model, as shown on the Model page."""

    path: str
    backbone: str
    weights: str
    bank: str
    n_concepts: int
    provenance: dict[str, Any]
    classes: tuple[str, ...]
    nec: float
    accuracy: float | None
    random_control_accuracy: float | None
    random_control_nec: float | None
    dataset: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def summary_rows(self) -> list[tuple[str, str]]:
        """(field, value) rows for a two-column table."""

        def pct(v: float | None) -> str:
            return "not recorded" if v is None else f"{v:.1%}"

        control = "not recorded"
        if self.random_control_accuracy is not None:
            control = f"{pct(self.random_control_accuracy)}"
            if self.random_control_nec is not None:
                control += f" at NEC {self.random_control_nec:.2f}"
        return [
            ("backbone", f"{self.backbone} ({self.weights})"),
            ("concept bank", f"{self.bank} ({self.n_concepts} concepts)"),
            (
                "classes",
                f"{len(self.classes)}: {', '.join(self.classes[:12])}"
                + (" ..." if len(self.classes) > 12 else ""),
            ),
            ("NEC (non-zero weights per class)", f"{self.nec:.2f}"),
            ("test accuracy", pct(self.accuracy)),
            ("same head on random directions (control)", control),
            ("training data", self.dataset),
        ]


def model_card(model: ConceptBottleneckModel, path: str | Path) -> ModelCard:
    """Collect the card of a loaded model from its config fields."""
    metrics = model.metrics
    control = metrics.get("random_control") or {}
    training = model.training
    dataset = str(metrics.get("dataset") or training.get("dataset") or "not recorded")
    if training.get("n_train") is not None:
        dataset += f", {training.get('n_train')} train / {training.get('n_test')} test images"
    acc = metrics.get("test_accuracy")
    return ModelCard(
        path=str(path),
        backbone=str(model.backbone.get("backbone_id", "unknown")),
        weights=str(model.backbone.get("weights_id", "unknown")),
        bank=model.bank.name,
        n_concepts=len(model.bank),
        provenance=dict(model.bank.provenance),
        classes=model.class_names,
        nec=model.nec,
        accuracy=None if acc is None else float(acc),
        random_control_accuracy=None if "accuracy" not in control else float(control["accuracy"]),
        random_control_nec=None if "nec" not in control else float(control["nec"]),
        dataset=dataset,
        training=dict(training),
        metrics=dict(metrics),
    )


# -- the evaluation split -------------------------------------------------------------------
@dataclass
class EvaluationSplit:
    """The images a model is inspected on, with everything the pages show about them.

    Attributes
    ----------
    embeddings
        ``(n, dim)`` image embeddings.
    labels
        ``(n,)`` true class indices.
    scores
        ``(n, n_concepts)`` concept scores of the model.
    proba
        ``(n, n_classes)`` predicted probabilities.
    images
        ``(n, h, w, 3)`` uint8 images, or ``None`` when only embeddings are stored.
    source
        Where the split came from, for the page.
    concepts
        ``(n, n_concepts)`` 0/1 ground truth in the bank's order, or ``None`` when
        unknown (intervention curves need it).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    proba: np.ndarray
    images: np.ndarray | None
    source: str
    concepts: np.ndarray | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.proba.argmax(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    def accuracy(self) -> float:
        return float(self.correct.mean())

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def save_evaluation(
    directory: str | Path,
    embeddings: np.ndarray,
    labels: np.ndarray,
    images: np.ndarray | None = None,
    concepts: np.ndarray | None = None,
) -> Path:
    """Store an evaluation split next to a model (for data the app cannot regenerate).

    ``concepts`` (optional) is the ``(n, n_concepts)`` 0/1 ground truth in the model's
    bank order; with it the Global view draws intervention curves.
    """
    emb = np.asarray(embeddings, np.float32)
    y = np.asarray(labels, np.int64)
    if emb.ndim != 2 or y.shape != (emb.shape[0],):
        raise ValidationError(
            f"need embeddings (n, dim) and labels (n,), got {emb.shape} and {y.shape}"
        )
    arrays: dict[str, np.ndarray] = {"embeddings": emb, "labels": y}
    if images is not None:
        imgs = np.asarray(images)
        if imgs.dtype != np.uint8 or imgs.ndim != 4 or imgs.shape[0] != emb.shape[0]:
            raise ValidationError(
                f"images must be uint8 (n, h, w, 3) with n={emb.shape[0]}, got "
                f"{imgs.dtype} {imgs.shape}"
            )
        arrays["images"] = imgs
    if concepts is not None:
        truth = np.asarray(concepts)
        if truth.ndim != 2 or truth.shape[0] != emb.shape[0] or not np.isin(truth, (0, 1)).all():
            raise ValidationError(
                f"concepts must be 0/1 (n, n_concepts) with n={emb.shape[0]}, got {truth.shape}"
            )
        arrays["concepts"] = truth.astype(np.uint8)
    path = Path(directory) / EVALUATION_FILE
    write_arrays(path, arrays)
    return path


def evaluation_from_embeddings(
    model: ConceptBottleneckModel,
    embeddings: np.ndarray,
    labels: np.ndarray,
    images: np.ndarray | None,
    source: str,
    concepts: np.ndarray | None = None,
) -> EvaluationSplit:
    """Score and predict a split once, so that every page reads the same arrays."""
    scores = model.concept_scores(embeddings)
    if concepts is not None and np.shape(concepts) != scores.shape:
        raise ArtefactError(
            f"ground-truth concepts have shape {np.shape(concepts)}, the split's concept "
            f"scores {scores.shape}"
        )
    return EvaluationSplit(
        embeddings=np.asarray(embeddings, np.float32),
        labels=np.asarray(labels, np.int64),
        scores=scores,
        proba=model.proba_from_scores(scores),
        images=images,
        source=source,
        concepts=None if concepts is None else np.asarray(concepts, np.uint8),
    )


def load_evaluation(
    model: ConceptBottleneckModel,
    directory: str | Path,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
) -> EvaluationSplit | None:
    """The model's evaluation split, or ``None`` when it has none.

    ``evaluation.safetensors`` in the model directory wins; otherwise a shapes-world
    model's test split is regenerated from ``training.world`` and embedded with the
    model's backbone (through the embedding cache, so a second load is fast).
    """
    directory = Path(directory)
    stored = directory / EVALUATION_FILE
    if stored.is_file():
        arrays = read_arrays(stored)
        if "embeddings" not in arrays or "labels" not in arrays:
            raise ArtefactError(f"{stored}: needs tensors 'embeddings' and 'labels'")
        return evaluation_from_embeddings(
            model,
            arrays["embeddings"],
            arrays["labels"],
            arrays.get("images"),
            str(stored),
            arrays.get("concepts"),
        )
    world = model.training.get("world")
    if model.training.get("dataset") != "shapes" or not isinstance(world, dict):
        return None
    from cbm.backbones import EmbeddingCache, embed_images
    from cbm.data.shapes import CONCEPTS, ShapesWorld

    n_test = int(model.training.get("n_test", 0))
    split = str(model.training.get("split_test", "test"))
    if n_test <= 0:
        return None
    batch = ShapesWorld(**shapes_world_kwargs(world)).sample(n_test, split)
    backbone = load_backbone(model, device=device)
    emb = embed_images(backbone, batch.images, EmbeddingCache(cache_dir))
    # Ground truth when every bank concept is a shapes-world concept (by name).
    column = {c: i for i, c in enumerate(CONCEPTS)}
    truth = None
    if all(c in column for c in model.bank.concepts):
        truth = batch.concepts[:, [column[c] for c in model.bank.concepts]]
    return evaluation_from_embeddings(
        model,
        emb,
        batch.labels,
        batch.images,
        f"shapes world, {split} split ({n_test} images)",
        truth,
    )


def shapes_world_kwargs(world: dict[str, Any]) -> dict[str, Any]:
    """``ShapesWorld`` keyword arguments from its recorded ``config()``."""
    from cbm.data.shapes import ClassRule, Shortcut

    kwargs = dict(world)
    if "rules" in kwargs:
        kwargs["rules"] = tuple(
            r
            if isinstance(r, ClassRule)
            else ClassRule(r["name"], {k: tuple(v) for k, v in r["allowed"].items()})
            for r in kwargs["rules"]
        )
    if isinstance(kwargs.get("shortcut"), dict):
        kwargs["shortcut"] = Shortcut(**kwargs["shortcut"])
    return kwargs


def load_backbone(model: ConceptBottleneckModel, device: str = "cpu") -> Any:
    """The backbone that embedded the model's training images, checked by weights id."""
    from cbm.backbones.factory import reopen_backbone

    return reopen_backbone(model.backbone, device)


# -- uploads --------------------------------------------------------------------------------
@dataclass
class UploadedImage:
    """A checked, decoded upload."""

    name: str
    sha256: str
    image: Any  # PIL.Image.Image in RGB
    width: int
    height: int


def read_upload(
    name: str,
    data: bytes,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
) -> UploadedImage:
    """Decode an uploaded image, refusing anything that is not a bounded, valid image.

    Raises
    ------
    ValidationError
        Too many bytes, too many pixels, not an image, an unsupported format, or a
        truncated/corrupt file; the message says which and what is accepted.
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) == 0:
        raise ValidationError(f"{name!r} is empty (0 bytes); upload an image file")
    if len(data) > max_bytes:
        raise ValidationError(
            f"{name!r} is {len(data) / 2**20:.1f} MiB; uploads are limited to "
            f"{max_bytes / 2**20:.1f} MiB"
        )
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "unknown"
            if fmt not in UPLOAD_FORMATS:
                raise ValidationError(
                    f"{name!r} is a {fmt} file; accepted formats: {', '.join(UPLOAD_FORMATS)}"
                )
            w, h = im.size
            if w * h > max_pixels:
                raise ValidationError(
                    f"{name!r} is {w} x {h} pixels; at most {max_pixels:,} pixels are accepted"
                )
            im.load()
            rgb = im.convert("RGB")
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ValidationError(
            f"{name!r} is not a valid image ({err}); upload a {'/'.join(UPLOAD_FORMATS)} file"
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ValidationError(
            f"{name!r} could not be decoded, it looks truncated or corrupt ({err})"
        ) from err
    return UploadedImage(name, hashlib.sha256(data).hexdigest(), rgb, w, h)


def embed_upload(backbone: Any, upload: UploadedImage) -> np.ndarray:
    """``(1, dim)`` embedding of an upload with the model's backbone."""
    try:
        return np.asarray(backbone.encode_images([upload.image]), np.float32)
    except (RuntimeError, ValueError) as err:
        raise CBMError(f"the backbone could not embed {upload.name!r}: {err}") from err
