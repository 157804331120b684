"""``cbm audit`` on a shapes-world model regenerates its world and fills every section."""

import pytest
from typer.testing import CliRunner

from cbm.backbones.tiny_clip import WEIGHTS_PATH
from cbm.cli import app
from cbm.pipeline import run_demo


@pytest.mark.slow
@pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="shipped tiny-CLIP weights not present")
def test_cbm_audit_on_a_demo_model(tmp_path):
    run_demo(
        tmp_path / "model",
        n_train=600,
        n_test=300,
        device="cpu",
        progress=False,
        cache_dir=tmp_path / "cache",
    )
    args = [
        "audit",
        str(tmp_path / "model"),
        "--n-train",
        "600",
        "--n-test",
        "300",
        "--n-maps",
        "24",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "audit"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "audit" / "report.md").read_text()
    for heading in ("## Concept existence", "## Localisation", "## Label information"):
        assert heading in text
    assert "Skipped sections" not in text
    assert (tmp_path / "audit" / "figures" / "concept_maps.png").is_file()
