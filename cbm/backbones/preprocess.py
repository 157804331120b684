"""Batched image preprocessing shared by backbones that take uint8 arrays or PIL images."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cbm.exceptions import ValidationError


def check_image_array(images: np.ndarray) -> np.ndarray:
    """Return ``images`` if it is uint8 ``(n, h, w, 3)``, else raise a helpful error."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValidationError(
            f"image arrays must be uint8 (n, height, width, 3), got {arr.dtype} {arr.shape}"
        )
    return arr


def resize_crop_normalise(
    images: np.ndarray,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
) -> torch.Tensor:
    """uint8 ``(n, h, w, 3)`` -> float ``(n, 3, size, size)``: shortest side to ``size``
    (bicubic, antialiased), centre crop, then ``(x - mean) / std`` on the [0, 1] scale."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
        top = (new[0] - size) // 2
        left = (new[1] - size) // 2
        x = x[..., top : top + size, left : left + size].clamp(0, 1)
    m = torch.tensor(list(mean), device=device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(list(std), device=device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def pil_batch_to_array(images: Sequence[Any], size: int) -> np.ndarray:
    """PIL images of any size and mode -> uint8 ``(n, size, size, 3)``.

    Each image is resized so its shortest side is ``size`` (bicubic) and centre
    cropped; doing this per image first lets a batch of mixed sizes become one array.
    """
    from PIL import Image

    out = np.empty((len(images), size, size, 3), np.uint8)
    for k, im in enumerate(images):  # PIL resizes one image at a time
        rgb = im.convert("RGB") if im.mode != "RGB" else im
        w, h = rgb.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        rgb = rgb.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        out[k] = np.asarray(rgb.crop((left, top, left + size, top + size)))
    return out


def iter_preprocessed(
    images: np.ndarray | Sequence[Any],
    batch_size: int,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    progress: bool = False,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, normalised batch)`` over uint8 image arrays or PIL images."""
    from tqdm.auto import tqdm

    if isinstance(images, np.ndarray):
        check_image_array(images)
    for start in tqdm(range(0, len(images), batch_size), desc="embedding", disable=not progress):
        if isinstance(images, np.ndarray):
            arr = np.asarray(images[start : start + batch_size])
        else:
            arr = pil_batch_to_array(list(images[start : start + batch_size]), size)
        yield start, resize_crop_normalise(arr, size, mean, std, device)
