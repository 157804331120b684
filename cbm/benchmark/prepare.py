"""The benchmark's configuration, and turning one (dataset, backbone) pair into a Setting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import cbm
from cbm.benchmark.settings import (
    CPU_SIZES,
    DATASETS,
    USER_DATASETS,
    Setting,
    classifier_head_bank,
    dataset_root,
    default_reference_dir,
    imagenet_class_names,
    open_splits,
    text_bank_for,
)
from cbm.concepts.naming import (
    LatentNames,
    Vocabulary,
    name_by_classifier,
    name_by_images,
    name_with_backbone,
)
from cbm.concepts.sae import SparseAutoencoder
from cbm.exceptions import ConfigurationError
from cbm.sae_pipeline import shapes_sae

FIXED_BACKBONE = {"shapes": "shapes-clip-rn", "fashion-mnist": "efficientnet-lite0"}
NEC_CHOICES = ("5", "30", "dense")
BANK_KINDS = ("text", "sae", "random", "probe")


@dataclass
class BenchmarkConfig:
    """What ``cbm benchmark`` runs.

    Parameters
    ----------
    datasets
        Any of :data:`~cbm.benchmark.settings.DATASETS`.
    backbones
        ``(name, pretrained)`` pairs for CIFAR, CUB and ImageNet (any open_clip model
        and tag or checkpoint file, ``hf:<folder>``, ``efficientnet-lite0``); shapes
        always uses the shipped tiny CLIP and Fashion-MNIST EfficientNet-Lite0.
    necs
        ``"5"``, ``"30"``, ``"dense"`` (or any other positive number).
    banks
        Rows per NEC: ``text`` (LLM/text bank), ``sae``, ``random`` (a random bank of
        the text bank's size; every bank row also carries its own random control)
        and ``probe`` (linear probe on the raw features; sparse at a finite NEC).
    n_train, n_test
        Images per split (stratified subsample); ``None``: the CPU defaults, or every
        image when the device is CUDA; ``0``: every image.
    sae_latents, sae_epochs
        SAE size and training length (``None``: per-dataset defaults).
    head_concepts
        Size of the classifier-head bank (backbones with an ImageNet head).
    head_lambdas
        Grid points of the sparse head's regularisation path (fewer is faster).
    threads
        CPU threads for torch and BLAS during the run (``None``: leave as set).
    vocabulary
        Naming vocabulary for SAE latents on text-capable backbones (``words``,
        ``bank:NAME``, a bank JSON or a text file).
    bank_file
        The text bank to use instead of the published/shipped one.
    """

    datasets: tuple[str, ...] = ("shapes",)
    backbones: tuple[tuple[str, str | None], ...] = (("ViT-B-16", "openai"),)
    necs: tuple[str, ...] = NEC_CHOICES
    banks: tuple[str, ...] = BANK_KINDS
    data_root: Path | None = None
    reference_dir: Path | None = None
    bank_file: Path | None = None
    vocabulary: str = "words"
    n_train: int | None = None
    n_test: int | None = None
    sae_latents: int | None = None
    sae_epochs: float | None = None
    head_concepts: int = 100
    head_lambdas: int = 100
    threads: int | None = 1
    seed: int = 0
    device: str = "auto"
    batch_size: int = 64
    cache_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [d for d in self.datasets if d not in DATASETS]
        if bad:
            raise ConfigurationError(f"unknown datasets {bad}; choose from {', '.join(DATASETS)}")
        for nec in self.necs:
            if nec != "dense" and not _positive(nec):
                raise ConfigurationError(f"NEC must be a positive number or 'dense', got {nec!r}")
        bad = [b for b in self.banks if b not in BANK_KINDS]
        if bad:
            raise ConfigurationError(f"unknown banks {bad}; choose from {', '.join(BANK_KINDS)}")
        if self.reference_dir is None:
            self.reference_dir = default_reference_dir()

    def pairs(self) -> list[tuple[str, str, str | None]]:
        """Every (dataset, backbone name, pretrained) the grid covers."""
        out: list[tuple[str, str, str | None]] = []
        for ds in self.datasets:
            if ds in FIXED_BACKBONE:
                out.append((ds, FIXED_BACKBONE[ds], None))
            else:
                out.extend((ds, name, pre) for name, pre in self.backbones)
        return out

    def sizes(self, dataset: str, cuda: bool) -> tuple[int | None, int | None]:
        """Images per split: explicit sizes, else all on CUDA, else the CPU defaults."""
        default = (None, None) if cuda else CPU_SIZES[dataset]
        n_train = default[0] if self.n_train is None else (self.n_train or None)
        n_test = default[1] if self.n_test is None else (self.n_test or None)
        return n_train, n_test

    def key(self, dataset: str, backbone: str, pretrained: str | None, cuda: bool) -> str:
        """Hash of everything that fixes one setting's numbers (for resuming)."""
        pre_id: Any = pretrained
        if pretrained and Path(pretrained).is_file():
            stat = Path(pretrained).stat()
            pre_id = [str(Path(pretrained).resolve()), stat.st_size, stat.st_mtime_ns]
        fields = {
            "dataset": dataset,
            "backbone": backbone,
            "pretrained": pre_id,
            "sizes": self.sizes(dataset, cuda),
            "seed": self.seed,
            "bank_file": str(self.bank_file) if self.bank_file else None,
            "reference": str(self.reference_dir) if self.reference_dir else None,
            "vocabulary": self.vocabulary,
            "sae": sae_recipe(dataset, self),
            "cbm_version": cbm.__version__,
            "head_concepts": self.head_concepts,
            "head_lambdas": self.head_lambdas,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _embed(backbone: Any, dataset: Any, cache: Any, batch_size: int) -> np.ndarray:
    """Embeddings of a dataset through the cache, with a progress bar over chunks."""
    from tqdm.auto import tqdm

    from cbm.backbones.shards import embed_rows

    def compute() -> np.ndarray:
        n, step = len(dataset), batch_size * 8
        parts = []
        for start in tqdm(range(0, n, step), desc=f"embedding {dataset.name}", unit="chunk"):
            parts.append(embed_rows(backbone, dataset, start, min(start + step, n), batch_size)[0])
        return np.concatenate(parts)

    return np.asarray(cache.get_or_compute(backbone.identity(), dataset.fingerprint(), compute))


def _has_text_tower(backbone: Any) -> bool:
    try:
        backbone.encode_texts(["a photo"])
    except ConfigurationError:
        return False
    return True


# SAE recipe per dataset (docs/benchmark.md): shapes uses the one measured in docs/sae.md;
# on Fashion-MNIST TopK k = 8 gave the best NEC-5 CBM of the settings tried; CLIP data
# gets Discover-then-Name's 8x expansion (n_latents 0 = 8 x embedding size).
SAE_RECIPES: dict[str, dict[str, Any]] = {
    "shapes": {  # the recipe measured in docs/sae.md
        k: v
        for k, v in shapes_sae().get_params().items()
        if k in ("n_latents", "activation", "l1_coeff", "epochs", "batch_size")
    },
    "fashion-mnist": dict(n_latents=256, activation="topk", k=8, epochs=30, batch_size=256),
    "clip": dict(n_latents=0, activation="topk", k=32, epochs=30, batch_size=1024),
}


def sae_recipe(dataset: str, cfg: BenchmarkConfig) -> dict[str, Any]:
    """The SAE hyper-parameters of a setting, with the user's overrides applied."""
    params = dict(SAE_RECIPES.get(dataset, SAE_RECIPES["clip"]))
    if cfg.sae_latents is not None:
        params["n_latents"] = cfg.sae_latents
    if cfg.sae_epochs is not None:
        params["epochs"] = cfg.sae_epochs
    return params


def default_sae(dataset: str, dim: int, cfg: BenchmarkConfig, device: str) -> SparseAutoencoder:
    """An unfitted SAE with the setting's recipe (``n_latents`` 0 means 8 x ``dim``)."""
    params = sae_recipe(dataset, cfg)
    params["n_latents"] = params["n_latents"] or 8 * dim
    if params["activation"] == "topk":
        params["k"] = min(params["k"], params["n_latents"])
    return SparseAutoencoder(**params, device=device, seed=cfg.seed)


def prepare_setting(
    cfg: BenchmarkConfig, dataset: str, backbone_name: str, pretrained: str | None
) -> Setting:
    """Open, subsample and embed one dataset with one backbone; gather its banks."""
    import torch

    from cbm.backbones import EmbeddingCache
    from cbm.backbones.base import resolve_device
    from cbm.backbones.factory import open_backbone

    device = str(resolve_device(cfg.device))
    n_train, n_test = cfg.sizes(dataset, device.startswith("cuda"))
    pre = None if pretrained in (None, "", "none", "random") else pretrained
    if dataset == "shapes":
        from cbm.backbones import OpenCLIPBackbone
        from cbm.data.arrays import ArrayDataset
        from cbm.data.shapes import ShapesWorld

        world = ShapesWorld(seed=cfg.seed)
        train, test = (
            ArrayDataset(b.images, b.labels, world.class_names, f"shapes/{s}")
            for b, s in (
                (world.sample(n_train or 3000, "train"), "train"),
                (world.sample(n_test or 1500, "test"), "test"),
            )
        )
        backbone: Any = OpenCLIPBackbone(device=device)
    else:
        train, test = open_splits(
            dataset, dataset_root(dataset, cfg.data_root), n_train, n_test, cfg.seed
        )
        backbone = open_backbone(backbone_name, pre, device)
    cache = EmbeddingCache(cfg.cache_dir)
    with torch.inference_mode():
        emb_train = _embed(backbone, train, cache, cfg.batch_size)
        emb_test = _embed(backbone, test, cache, cfg.batch_size)
    ok_train, ok_test = np.isfinite(emb_train).all(1), np.isfinite(emb_test).all(1)
    identity = backbone.identity()
    text = _has_text_tower(backbone)
    head_bank, reason, text_bank = None, "", None
    head = getattr(getattr(backbone, "model", None), "_fc", None)  # EfficientNet's head
    W = None if head is None else head.weight.detach().float().cpu().numpy()
    if text:
        bank = text_bank_for(dataset, cfg.bank_file, cfg.reference_dir)
        text_bank = (bank, backbone.encode_texts(list(bank.prompts)))
    else:
        reason = f"{identity['backbone_id']} has no text tower, so text concepts cannot be scored"
    imagenet_names: list[str] = []
    if W is not None:
        imagenet_names = imagenet_class_names()
        head_bank = classifier_head_bank(W, imagenet_names, emb_train[ok_train], cfg.head_concepts)
    y_train = np.asarray(train.labels)[ok_train]

    def name_latents(sae: SparseAutoencoder) -> LatentNames:
        if text:
            vocab = Vocabulary.load(cfg.vocabulary)
            return name_with_backbone(sae.decoder_directions_, backbone, vocab)
        if W is None:
            codes = sae.transform(emb_train[ok_train])
            return name_by_images(codes, y_train, train.classes)
        names = name_by_classifier(sae.decoder_directions_, W, imagenet_names)
        by_images = name_by_images(sae.transform(emb_train[ok_train]), y_train, train.classes)
        names.details["top_images_majority_label"] = [list(n) for n in by_images.names]
        names.details["top_images"] = by_images.details["top_images"]
        return names

    return Setting(
        dataset=dataset,
        backbone=backbone_label(identity),
        identity=identity,
        classes=tuple(train.classes),
        emb_train=emb_train[ok_train],
        y_train=y_train,
        emb_test=emb_test[ok_test],
        y_test=np.asarray(test.labels)[ok_test],
        text_bank=text_bank,
        text_bank_reason=reason,
        head_bank=head_bank,
        name_latents=name_latents,
        sae=default_sae(dataset, emb_train.shape[1], cfg, device),
        info={
            "n_train": int(ok_train.sum()),
            "n_test": int(ok_test.sum()),
            "skipped_images": int((~ok_train).sum() + (~ok_test).sum()),
            "skipped_examples": [
                f"{item.path}: {item.reason}"
                for ds in (train, test)
                for item in getattr(ds, "skipped", [])[:3]
            ],
            "device": device,
            "head_params": {"device": device, "n_lambdas": cfg.head_lambdas},
        },
    )


def backbone_label(identity: dict[str, Any]) -> str:
    """``open_clip:ViT-B-16 (openai)``, ``efficientnet-lite0 (sha256:5793...)``."""
    tag = identity.get("pretrained") or identity.get("weights_id", "")
    tag = str(tag)
    return f"{identity['backbone_id']} ({tag[:19] if tag.startswith('sha256') else tag})"


__all__ = ["BenchmarkConfig", "prepare_setting", "USER_DATASETS"]
