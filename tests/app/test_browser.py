"""End-to-end: the real workbench server driven by headless Chromium through Playwright.

Needs Debian's ``chromium`` and ``pip install playwright`` (Playwright's own browser
download is not used); skipped with the reason when either is missing. Screenshots go
to ``$CBM_SCREENSHOT_DIR`` (default ``tests/app/screenshots/``, git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from workbench_models import find_flip

from cbm.cli_app import app_environment, app_script, streamlit_command
from cbm.model import ConceptBottleneckModel

CHROMIUM = os.environ.get("CBM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("CBM_SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytest.importorskip("streamlit", reason="the workbench needs the [app] extra")
if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(shapes_dir: Path) -> Iterator[str]:
    port = _free_port()
    cmd = streamlit_command(app_script(), port=port)
    env = app_environment(shapes_dir, shapes_dir.parent)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the workbench server did not start: {out[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 2200})
        pg.set_default_timeout(180_000)
        yield pg
        browser.close()


def _goto_page(pg: object, server: str, name: str) -> None:
    pg.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()
    pg.get_by_role("heading", name=name).wait_for()
    _settle(pg)


def _settle(pg: object) -> None:
    """Wait until Streamlit has finished the current script run."""
    pg.wait_for_timeout(300)
    pg.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def test_browser_model_card_and_image_view(server: str, page: object, shapes_dir: Path) -> None:
    pg = page
    pg.goto(server)
    pg.get_by_text("NEC (non-zero weights per class)").wait_for()
    _settle(pg)
    model = ConceptBottleneckModel.load(shapes_dir)
    body = pg.locator("body").inner_text()
    assert f"{model.nec:.2f}" in body and "random directions" in body
    pg.get_by_text("Evaluation split:").wait_for()
    pg.screenshot(path=str(SHOTS / "model.png"), full_page=True)
    _goto_page(pg, server, "Image view")
    pg.get_by_text("Inspecting evaluation image #0").wait_for()
    pg.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    pg.get_by_text("2 x 2 grid of per-location scores").wait_for()
    # Streamlit scrolls inside a fixed-height container: a taller window shows the map.
    pg.set_viewport_size({"width": 1400, "height": 3300})
    _settle(pg)
    pg.screenshot(path=str(SHOTS / "image_view.png"), full_page=True)
    pg.set_viewport_size({"width": 1400, "height": 2200})


def test_browser_global_view_curves(server: str, page: object, shapes_dir: Path) -> None:
    pg = page
    pg.goto(server)
    pg.get_by_text("NEC (non-zero weights per class)").wait_for()
    _goto_page(pg, server, "Global view")
    pg.get_by_text("Task error as concepts are set to their true values").wait_for()
    _settle(pg)
    # Weight matrix, accuracy-vs-NEC path and intervention curves, all drawn.
    charts = pg.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() == 3
    for i in range(3):
        charts.nth(i).locator("canvas, svg").first.wait_for()
    body = pg.locator("body").inner_text()
    model = ConceptBottleneckModel.load(shapes_dir)
    assert f"The dashed line marks the saved head, NEC {model.nec:.2f}" in body
    assert "ECTP" in body and "steps to halve the error" in body
    pg.screenshot(path=str(SHOTS / "global_view.png"), full_page=True)


def test_browser_intervention_flips_the_prediction(
    server: str, page: object, shapes_dir: Path
) -> None:
    pg = page
    pg.goto(server)
    pg.get_by_text("NEC (non-zero weights per class)").wait_for()
    _goto_page(pg, server, "Intervene")
    flip = find_flip(shapes_dir, 0)
    if flip is None:
        pytest.skip("no single concept edit flips evaluation image #0")
    j, how, new_class = flip
    concept = ConceptBottleneckModel.load(shapes_dir).bank.concepts[j]
    button = f"Set {how}"
    box = pg.locator('[data-testid="stSelectbox"]').filter(has_text="Concept").first
    box.click()
    pg.keyboard.type(concept)
    pg.get_by_role("option", name=concept, exact=True).click()
    _settle(pg)
    pg.get_by_role("button", name=button).click()
    after = pg.locator('[data-testid="stMetric"]').filter(has_text="After edits")
    after.get_by_text(new_class, exact=True).wait_for()
    _settle(pg)
    pg.screenshot(path=str(SHOTS / "intervene.png"), full_page=True)
    assert "(changed)" in after.inner_text()
    history = pg.locator('[data-testid="stTable"]').last.inner_text()
    assert concept in history and how in history
