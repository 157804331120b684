"""A small random conv net standing in for a backbone in the shard and scale tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class ConvBackbone:
    """A small random conv net: real batched torch code, with a call counter."""

    def __init__(self, seed: int = 0, fail_after: int | None = None) -> None:
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2)
        )
        self.embed_dim = 32
        self.backbone_id = "test-conv"
        self.weights_id = f"seed:{seed}"
        self.calls = 0
        self.fail_after = fail_after

    def identity(self) -> dict[str, Any]:
        return {"backbone_id": self.backbone_id, "weights_id": self.weights_id}

    @torch.inference_mode()
    def encode_images(self, images: Any, batch_size: int = 64) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        if not isinstance(images, np.ndarray):
            images = np.stack([np.asarray(im.resize((12, 12))) for im in images])
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        return self.net(x).flatten(1).numpy()
