"""Per-location image embeddings in the joint image-text space.

A CLIP image tower pools a grid of features into one embedding. Applying the pool's
value and output projections to each grid cell on its own gives one embedding per
location in the same space as the text embeddings, so a concept's text embedding can
be compared with every location (a concept activation map).

- ModifiedResNet (the RN CLIPs and cbm's ``shapes-clip-rn``): the attention pool
  applied to a one-token sequence at each position is ``c_proj(v_proj(x + pos))``
  (softmax over one key is 1). This is the value path that MaskCLIP (Zhou et al.
  2022) uses; written here because open_clip exposes only the pooled output.
- VisionTransformer: open_clip returns the patch tokens (``output_tokens``); they
  pass through ``ln_post`` and the same projection as the class token.

Both functions also return the pooled embedding computed from the same pass, which
equals ``encode_image`` (the tests check this), so the maps and the embedding the
concept scores are computed from come from one forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cbm.exceptions import ConfigurationError, ValidationError


def _resnet_dense(visual: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    feats = visual.layer4(visual.layer3(visual.layer2(visual.layer1(visual.stem(x)))))
    n, c, h, w = feats.shape
    pool = visual.attnpool
    pos = pool.positional_embedding.to(feats.dtype)
    side = int(round((pos.shape[0] - 1) ** 0.5))
    pos_grid = pos[1:]
    if (h, w) != (side, side):  # other input sizes: resample the learnt grid
        grid = pos_grid.T.reshape(1, c, side, side)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        pos_grid = grid.reshape(c, h * w).T
    tokens = feats.flatten(2).transpose(1, 2)  # (n, hw, c)
    seq = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
    seq = seq + torch.cat([pos[:1], pos_grid])[None]
    v = F.linear(seq, pool.v_proj.weight, pool.v_proj.bias)
    q = F.linear(seq[:, :1], pool.q_proj.weight, pool.q_proj.bias)
    k = F.linear(seq, pool.k_proj.weight, pool.k_proj.bias)
    heads = pool.num_heads
    hd = c // heads
    qh = q.reshape(n, 1, heads, hd).transpose(1, 2)
    kh = k.reshape(n, -1, heads, hd).transpose(1, 2)
    vh = v.reshape(n, -1, heads, hd).transpose(1, 2)
    attn = torch.softmax(qh @ kh.transpose(-1, -2) / hd**0.5, dim=-1)  # (n, heads, 1, 1+hw)
    pooled = pool.c_proj((attn @ vh).transpose(1, 2).reshape(n, c))
    dense = pool.c_proj(v[:, 1:])  # the pool applied to each location alone
    return dense.reshape(n, h, w, -1), pooled


def _vit_dense(visual: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if getattr(visual, "attn_pool", None) is not None or visual.proj is None:
        raise ConfigurationError(
            "dense embeddings need a ViT whose class token and patch tokens share one "
            "projection (no attentional pooler); this model has a different head"
        )
    previous = visual.output_tokens
    visual.output_tokens = True
    try:
        pooled, tokens = visual(x)
    finally:
        visual.output_tokens = previous
    if visual.pool_type == "none":
        raise ConfigurationError("ViT pool_type 'none' gives no separate patch tokens")
    gh, gw = visual.grid_size
    dense = tokens @ visual.proj
    return dense.reshape(x.shape[0], gh, gw, -1), pooled


def dense_embeddings(visual: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-location and pooled embeddings of a preprocessed batch.

    Parameters
    ----------
    visual
        An open_clip image tower (``model.visual``): ModifiedResNet or VisionTransformer.
    x
        ``(n, 3, H, W)`` normalised images.

    Returns
    -------
    dense, pooled
        ``(n, h, w, dim)`` per-location embeddings and the ``(n, dim)`` image embedding.
    """
    if hasattr(visual, "attnpool") and hasattr(visual, "layer4"):
        return _resnet_dense(visual, x)
    if hasattr(visual, "grid_size") and hasattr(visual, "transformer"):
        return _vit_dense(visual, x)
    raise ConfigurationError(
        f"dense embeddings are implemented for open_clip ModifiedResNet and "
        f"VisionTransformer image towers, not {type(visual).__name__}"
    )


@torch.inference_mode()
def dense_image_embeddings(
    backbone: Any, images: np.ndarray, batch_size: int = 128, upscale: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Per-location embeddings of uint8 images with an :class:`OpenCLIPBackbone`.

    Parameters
    ----------
    backbone
        An ``OpenCLIPBackbone`` (uses its preprocessing and ``model.visual``).
    images
        ``(n, h, w, 3)`` uint8.
    batch_size
        Images per forward pass.
    upscale
        Integer factor to enlarge the preprocessed images by (bilinear) before the
        tower, for a finer grid (``shapes-clip-rn`` gives 2 x 2 cells at its native
        64 pixels, 4 x 4 at ``upscale=2``). At 1 the pooled output is the embedding.
        A finer grid is not a better map: enlarged objects are off the scale the tower
        was trained at (on the shapes world the pointing game of shape concepts drops
        from 1.0 at 2 x 2 to about 0.3 at 4 x 4; see docs/metrics.md).

    Returns
    -------
    dense, pooled
        ``(n, gh, gw, dim)`` and ``(n, dim)`` float32 arrays.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValidationError(
            f"image arrays must be uint8 (n, height, width, 3), got {arr.dtype} {arr.shape}"
        )
    if upscale < 1:
        raise ConfigurationError(f"upscale must be a positive integer, got {upscale}")
    visual = backbone.model.visual
    dense_parts, pooled_parts = [], []
    for start in range(0, arr.shape[0], batch_size):
        x = backbone._array_batch(arr[start : start + batch_size])
        if upscale > 1:
            x = F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)
        dense, pooled = dense_embeddings(visual, x)
        dense_parts.append(dense.float().cpu().numpy())
        pooled_parts.append(pooled.float().cpu().numpy())
    return np.concatenate(dense_parts), np.concatenate(pooled_parts)
