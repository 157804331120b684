"""The project's own tiny CLIP, trained contrastively on the shapes world.

The model is an ordinary open_clip model: a registered config
(``model_configs/shapes-clip-rn.json``: a small ModifiedResNet image tower and a
two-layer text transformer) and a safetensors checkpoint, both shipped in the package
and loaded through ``open_clip.create_model_and_transforms``, the path real
pretrained weights take.

Training uses a multi-positive InfoNCE loss: a caption names a random subset of an
image's concepts, so it also describes every other image in the batch that has those
concepts. Treating all of them as positives (instead of only the diagonal) is what
lets the model learn shape, the hardest dimension at 64 pixels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cbm.data.captions import concept_prompt, random_captions
from cbm.data.shapes import CONCEPTS, DIMENSIONS, ClassRule, ShapesWorld

MODEL_NAME = "shapes-clip-rn"
_HERE = Path(__file__).parent
CONFIG_DIR = _HERE / "model_configs"
WEIGHTS_PATH = _HERE / "weights" / f"{MODEL_NAME}.safetensors"

# Two rules that split on size alone: every combination of the other concepts occurs,
# so the CLIP sees all of them, not only those the default classes allow.
_ALL_COMBINATIONS = (
    ClassRule("small", {"size": ("small",)}),
    ClassRule("large", {"size": ("large",)}),
)


def register() -> None:
    """Make ``shapes-clip-rn`` known to open_clip (idempotent)."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def images_to_tensor(
    images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` images to a normalised float ``(n, 3, h, w)`` tensor."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


def multi_positive_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE where every fitting image-caption pair is a positive.

    Parameters
    ----------
    image_emb, text_emb
        L2-normalised ``(b, d)`` embeddings.
    positives
        ``(b, b)`` boolean; ``positives[i, j]`` is true when caption ``j`` fits image ``i``
        (the diagonal always is).
    scale
        The logit scale (temperature inverse).
    """
    logits = scale * image_emb @ text_emb.T
    neg_inf = torch.finfo(logits.dtype).min
    pos_logits = logits.masked_fill(~positives, neg_inf)
    loss_i = torch.logsumexp(logits, 1) - torch.logsumexp(pos_logits, 1)
    loss_t = torch.logsumexp(logits, 0) - torch.logsumexp(pos_logits, 0)
    return (loss_i.mean() + loss_t.mean()) / 2


@dataclass
class TrainReport:
    """What a tiny-CLIP training run did."""

    steps: int
    batch_size: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    zero_shot: dict[str, float] = field(default_factory=dict)


def zero_shot_accuracy(
    encode_images: Callable[[np.ndarray], np.ndarray],
    encode_texts: Callable[[list[str]], np.ndarray],
    n: int = 1000,
    seed: int = 12345,
) -> dict[str, float]:
    """Zero-shot accuracy per concept dimension on held-out shapes-world images.

    For each dimension, every image is assigned the value whose one-concept prompt
    is most similar to it.
    """
    world = ShapesWorld(rules=_ALL_COMBINATIONS, seed=seed)
    batch = world.sample(n, split="zero-shot")
    img = encode_images(batch.images)
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    result: dict[str, float] = {}
    offset = 0
    for dim, values in DIMENSIONS.items():
        names = CONCEPTS[offset : offset + len(values)]
        txt = encode_texts([concept_prompt(c) for c in names])
        txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
        pred = (img @ txt.T).argmax(1)
        result[dim] = float((pred == batch.values[dim]).mean())
        offset += len(values)
    return result


def train_tiny_clip(
    steps: int = 1500,
    batch_size: int = 192,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    log_every: int = 50,
    progress: bool = True,
    on_log: Callable[[int, float, torch.nn.Module], None] | None = None,
    init: Path | None = None,
) -> tuple[torch.nn.Module, TrainReport]:
    """Train the tiny CLIP from scratch on freshly generated shapes-world images.

    Every step draws a new batch, so the model never sees an image twice.
    ``on_log(step, loss, model)`` is called every ``log_every`` steps (e.g. to
    measure zero-shot accuracy while training). ``init`` continues training from a
    saved checkpoint instead of random weights.

    Returns
    -------
    model, report
        The trained open_clip model (on CPU, eval mode) and a :class:`TrainReport`.
    """
    import open_clip
    from tqdm.auto import tqdm

    register()
    torch.manual_seed(seed)
    model = open_clip.create_model(
        MODEL_NAME, pretrained=str(init) if init is not None else None
    ).to(device)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    mean, std = model.visual.image_mean, model.visual.image_std
    world = ShapesWorld(rules=_ALL_COMBINATIONS, seed=seed, noise=6.0)
    rng = np.random.default_rng(seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [
        p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)
    ]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.98),
    )
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    report = TrainReport(steps=steps, batch_size=batch_size, seconds=0.0)
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(steps), desc="training tiny CLIP", disable=not progress)
    running = 0.0
    for step in bar:
        batch = world.sample(batch_size, split=f"clip-train/{step}")
        texts, required = random_captions(batch.values, rng)
        # caption j fits image i when every concept it names is present in i
        misses = required.astype(np.float32) @ (1 - batch.concepts.astype(np.float32)).T
        positives = torch.from_numpy(misses.T == 0).to(device)
        x = images_to_tensor(batch.images, mean, std).to(device)
        tok = tokenizer(texts).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(model.encode_text(tok), dim=-1)
        loss = multi_positive_loss(img, txt, positives, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running = loss.item() if step == 0 else 0.95 * running + 0.05 * loss.item()
        if step % log_every == 0 or step == steps - 1:
            report.losses.append(float(running))
            bar.set_postfix(loss=f"{running:.3f}")
            if on_log is not None:
                model.eval()
                on_log(step, running, model)
                model.train()
    model.eval()
    model = model.cpu()
    report.seconds = time.perf_counter() - start
    return model, report


def zero_shot_of_model(model: Any, n: int = 1000, seed: int = 12345) -> dict[str, float]:
    """:func:`zero_shot_accuracy` of an in-memory open_clip model of this config."""
    import open_clip

    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    mean, std = model.visual.image_mean, model.visual.image_std

    @torch.no_grad()
    def encode_images(images: np.ndarray) -> np.ndarray:
        parts = [
            model.encode_image(images_to_tensor(images[i : i + 256], mean, std))
            for i in range(0, len(images), 256)
        ]
        return torch.cat(parts).float().numpy()

    @torch.no_grad()
    def encode_texts(texts: list[str]) -> np.ndarray:
        return model.encode_text(tokenizer(texts)).float().numpy()

    return zero_shot_accuracy(encode_images, encode_texts, n=n, seed=seed)


def save_weights(
    model: torch.nn.Module, path: Path, vocabulary_texts: list[str] | None = None
) -> None:
    """Save as float16 safetensors, zeroing token embeddings that training never used.

    Rows of the 49k-token embedding table that no training caption contains kept their
    random initialisation and carry no meaning; zeroing them makes the shipped file
    compress to a fraction of its size.
    """
    import open_clip
    from safetensors.torch import save_file

    if vocabulary_texts is None:
        vocabulary_texts = [concept_prompt(c) for c in CONCEPTS]
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    used = torch.unique(tokenizer(vocabulary_texts))
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    emb = state["token_embedding.weight"]
    keep = torch.zeros(emb.shape[0], dtype=torch.bool)
    keep[used] = True
    emb[~keep] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "model": MODEL_NAME})
    tmp.replace(path)
