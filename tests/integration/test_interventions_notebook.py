"""Runs notebooks/interventions.py end to end on a small shapes world."""

import runpy
from pathlib import Path

import pytest

from cbm.backbones import tiny_clip

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "interventions.py"
# About 35 CPU seconds (three NEC-targeted head fits, 2,000 images embedded); it runs in
# the default lane because the issue wants the notebooks executed in CI.
pytestmark = [
    pytest.mark.skipif(
        not Path(tiny_clip.WEIGHTS_PATH).is_file(), reason="the tiny CLIP weights are not shipped"
    ),
]


def test_notebook_runs_and_informed_strategies_beat_random(tmp_path, monkeypatch):
    monkeypatch.setenv("CBM_NB_N_TRAIN", "600")
    monkeypatch.setenv("CBM_NB_N_TEST", "400")
    monkeypatch.setenv("CBM_FIGURE_DIR", str(tmp_path / "fig"))
    monkeypatch.setenv("CBM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    ns = runpy.run_path(str(NOTEBOOK), run_name="__notebook__")
    assert (tmp_path / "fig" / "intervention_curves.png").stat().st_size > 10_000
    # EUDTP is not asserted: at this small size it is no better than RAND (it asks about
    # corrections of confidently wrong concepts last; docs/interventions.md); the full
    # notebook puts it below RAND, the unit tests check the other four on a harder world.
    informed = {"ucp", "lcp", "cctp", "ectp"}
    for granularity in ("concept", "group"):
        res = ns["results"][granularity]
        assert res["initial_error"] > 0.05, "deployment noise should leave error to fix"
        assert informed <= set(res["below_rand"]), res
        assert informed <= set(res["batch_below_rand"]), res
    assert ns["shortcut"]["rank"] is not None
    assert ns["shortcut"]["original_model_unchanged"]
    assert "accuracy_after_global_edit" in ns["shortcut"]
