"""In-memory image datasets: Fashion-MNIST (Debian's files) and CIFAR-10/100.

Both come back as :class:`ArrayDataset`, a uint8 ``(n, h, w, 3)`` array plus labels,
which every backbone's ``encode_images`` accepts directly. No loader here downloads
anything: point it at files you have.

Fashion-MNIST is read from the IDX files that Debian's ``dataset-fashion-mnist``
package installs (``apt-get install dataset-fashion-mnist``; files under
:data:`FASHION_MNIST_DIR`). CIFAR is read from the official *binary* release
(``cifar-10-batches-bin`` / ``cifar-100-binary``) with numpy alone; the official
*python* release is read through torchvision, which checks each file's MD5 against
the published one before unpickling it.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cbm.exceptions import ConfigurationError, ValidationError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class ArrayDataset:
    """Labelled images held in memory.

    Attributes
    ----------
    images
        uint8 ``(n, height, width, 3)``.
    labels
        int64 ``(n,)`` indices into ``classes``.
    classes
        Class names.
    name
        E.g. ``"fashion-mnist/train"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def fingerprint(self) -> str:
        """Content hash of images and labels (the embedding cache key)."""
        h = hashlib.sha256(f"{self.images.shape}{self.images.dtype.str}".encode())
        h.update(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).data)
        return h.hexdigest()

    def subsample(self, n: int, seed: int = 0, stratified: bool = True) -> ArrayDataset:
        """``n`` images drawn without replacement (balanced over classes if asked)."""
        if n >= len(self):
            return self
        idx = subsample_indices(self.labels, n, seed, stratified)
        return ArrayDataset(self.images[idx], self.labels[idx], self.classes, self.name)


def subsample_indices(
    labels: np.ndarray, n: int, seed: int = 0, stratified: bool = True
) -> np.ndarray:
    """Sorted indices of ``n`` of the samples, drawn without replacement.

    ``stratified`` deals the draw out over classes round-robin (each class keeps its
    share; classes with too few samples give all they have). ``n`` at least the number
    of samples keeps every index.
    """
    labels = np.asarray(labels)
    total = labels.shape[0]
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    if not stratified:
        return np.sort(rng.choice(total, n, replace=False))
    order = rng.permutation(total)
    ranks = np.empty(total, np.int64)
    for c in np.unique(labels):  # loop over classes, not samples
        members = order[labels[order] == c]
        ranks[members] = np.arange(members.size)
    return np.sort(np.argsort(ranks * total + order, kind="stable")[:n])


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 + 4 * ndim or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValidationError(f"{path} is not an IDX file of unsigned bytes")
    if data[3] != ndim:
        raise ValidationError(f"{path} has {data[3]} dimensions, expected {ndim}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValidationError(f"{path}: header says {shape} but holds {body.size} bytes")
    return body.reshape(shape)


def load_fashion_mnist(
    root: str | Path = FASHION_MNIST_DIR, split: str = "train", limit: int | None = None
) -> ArrayDataset:
    """Fashion-MNIST as 28 x 28 RGB (grey repeated) uint8 images.

    Parameters
    ----------
    root
        Folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.
    split
        ``"train"`` (60,000 images) or ``"test"`` (10,000).
    limit
        Keep only the first ``limit`` images (the files are in no class order).
    """
    root = Path(root)
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ConfigurationError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    found = {}
    for kind, stem in (("images", "images-idx3-ubyte"), ("labels", "labels-idx1-ubyte")):
        candidates = [root / f"{prefix}-{stem}.gz", root / f"{prefix}-{stem}"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise ConfigurationError(
                f"Fashion-MNIST {split} {kind} not found under {root} (looked for "
                f"{candidates[0].name}); on Debian/Ubuntu run "
                "'apt-get install dataset-fashion-mnist', or pass the folder with the IDX files"
            )
        found[kind] = path
    images = _read_idx(found["images"], 3)
    labels = _read_idx(found["labels"], 1).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValidationError(f"{root}: {images.shape[0]} images but {labels.shape[0]} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    rgb = np.repeat(images[..., None], 3, axis=-1)
    return ArrayDataset(rgb, labels, FASHION_MNIST_CLASSES, f"fashion-mnist/{split}")


def _cifar_binary(folder: Path, files: list[str], label_bytes: int, name: str) -> np.ndarray:
    record = label_bytes + 3072
    chunks = []
    for f in files:
        path = folder / f
        if not path.is_file():
            raise ConfigurationError(f"{name}: missing {path}")
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % record:
            raise ValidationError(f"{path}: size {raw.size} is not a multiple of {record}")
        chunks.append(raw.reshape(-1, record))
    return np.concatenate(chunks)


def load_cifar(
    root: str | Path, name: str = "cifar10", split: str = "train", fine: bool = True
) -> ArrayDataset:
    """CIFAR-10 or CIFAR-100 from a folder holding the official release.

    Parameters
    ----------
    root
        Folder containing ``cifar-10-batches-bin`` / ``cifar-100-binary`` (read with
        numpy) or ``cifar-10-batches-py`` / ``cifar-100-python`` (read by torchvision,
        MD5-checked). Nothing is downloaded.
    name
        ``"cifar10"`` or ``"cifar100"``.
    split
        ``"train"`` or ``"test"``.
    fine
        CIFAR-100 only: the 100 fine labels (default) or the 20 coarse ones.
    """
    root = Path(root)
    if name not in ("cifar10", "cifar100"):
        raise ConfigurationError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
    if split not in ("train", "test"):
        raise ConfigurationError(f"split must be 'train' or 'test', got {split!r}")
    tag = f"{name}/{split}"
    if name == "cifar10" and (root / "cifar-10-batches-bin").is_dir():
        folder = root / "cifar-10-batches-bin"
        files = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else []
        rec = _cifar_binary(folder, files or ["test_batch.bin"], 1, tag)
        labels, pixels = rec[:, 0], rec[:, 1:]
        meta = folder / "batches.meta.txt"
        classes = _meta_names(meta) or CIFAR10_CLASSES
    elif name == "cifar100" and (root / "cifar-100-binary").is_dir():
        folder = root / "cifar-100-binary"
        rec = _cifar_binary(folder, [f"{split}.bin"], 2, tag)
        labels, pixels = (rec[:, 1] if fine else rec[:, 0]), rec[:, 2:]
        meta = folder / ("fine_label_names.txt" if fine else "coarse_label_names.txt")
        classes = _meta_names(meta)
        if not classes:
            raise ConfigurationError(f"{tag}: missing {meta}")
    else:
        return _cifar_torchvision(root, name, split, fine)
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return ArrayDataset(np.ascontiguousarray(images), labels.astype(np.int64), classes, tag)


def _meta_names(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def _cifar_torchvision(root: Path, name: str, split: str, fine: bool) -> ArrayDataset:
    python_folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    binary_folder = "cifar-10-batches-bin" if name == "cifar10" else "cifar-100-binary"
    if not (root / python_folder).is_dir():
        raise ConfigurationError(
            f"no {name} release under {root}: unpack the official binary release "
            f"({binary_folder}/) or python release ({python_folder}/) there"
        )
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        ds = cls(str(root), train=split == "train", download=False)
    except RuntimeError as err:
        raise ConfigurationError(
            f"{root / python_folder} failed torchvision's MD5 check ({err}); "
            "re-download the official release"
        ) from err
    labels = np.asarray(ds.targets, dtype=np.int64)
    classes = tuple(ds.classes)
    if name == "cifar100" and not fine:
        raise ConfigurationError("coarse CIFAR-100 labels need the binary release")
    return ArrayDataset(np.asarray(ds.data, dtype=np.uint8), labels, classes, f"{name}/{split}")
