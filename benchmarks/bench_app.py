"""Workbench responsiveness: server time of one concept edit on a large model.

A model with 1,000 concepts and 200 classes (head fitted on synthetic embeddings, saved
with a 2,000-image evaluation split) is opened in Streamlit's AppTest, the Intervene
page is shown, and concept edits are timed: a slider move and a "Set present" click.
"page script" is the time Streamlit spends running the workbench script for the edit
(the server time a browser waits for), which includes the next-concept suggestion with
the default strategy (ECTP); "AppTest rerun" adds AppTest's own bookkeeping.
The target is 200 ms per edit.

Run: ``python benchmarks/bench_app.py [--concepts 1000] [--classes 200] [--repeats 20]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from cbm.app_support import save_evaluation
from cbm.concepts import ConceptBank
from cbm.heads import SparseLinearHead
from cbm.model import ConceptBottleneckModel

APP = Path(__file__).resolve().parents[1] / "app" / "workbench.py"
TARGET_MS = 200.0


def build_model(directory: Path, k: int, classes: int, n: int, dim: int = 64) -> Path:
    """Fit a dense head over ``k`` concept scores for ``classes`` classes and save it."""
    rng = np.random.default_rng(0)
    concepts = rng.standard_normal((k, dim)).astype(np.float32)
    centres = rng.standard_normal((classes, dim))
    y = rng.integers(0, classes, 2 * n)
    X = (centres[y] + 0.8 * rng.standard_normal((2 * n, dim))).astype(np.float32)
    bank = ConceptBank("bench", tuple(f"concept {i}" for i in range(k)))
    # A dense head (L2 only): every concept weighs on every class, the worst case for a
    # re-render (a sparse head at NEC 5 would touch a fraction of the weights).
    head = SparseLinearHead(target_nec=None, C=1.0, l1_ratio=0.0, max_iter=50, tol=1e-2)
    with threadpool_limits(limits=1):
        model = ConceptBottleneckModel(
            bank,
            concepts,
            {"backbone_id": "synthetic", "weights_id": "none", "embed_dim": dim},
            tuple(f"class {c}" for c in range(classes)),
            head,
        ).fit(X[:n], y[:n])
    model.metrics = {"test_accuracy": float((model.predict(X[n:]) == y[n:]).mean())}
    model.save(directory)
    save_evaluation(directory, X[n:], y[n:])
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--n", type=int, default=1000, help="training = evaluation images")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    sys.path.insert(0, str(APP.parent))
    import page_intervene  # the module the workbench script imports

    script_ms: list[float] = []
    render = page_intervene.render

    def timed_render() -> None:
        t = time.perf_counter()
        render()
        script_ms.append(1e3 * (time.perf_counter() - t))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model_dir = build_model(Path(tmp) / "big", args.concepts, args.classes, args.n)
        model = ConceptBottleneckModel.load(model_dir)
        print(
            f"model: {args.concepts} concepts x {args.classes} classes, NEC {model.nec:.1f}, "
            f"{args.n} evaluation images (built in {time.perf_counter() - t0:.0f} s)"
        )
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.session_state["model_dir"] = str(model_dir)
        at.run()
        at.sidebar.radio(key="page").set_value("Intervene").run()
        if at.exception:
            raise SystemExit(f"the app failed: {at.exception}")
        page_intervene.render = timed_render
        rows = []
        values = np.linspace(-3, 3, args.repeats)
        for action in ("slider move", "Set present click"):
            script_ms.clear()
            walls = []
            for r in range(args.repeats):
                j = int(at.selectbox(key="concept_choice").value)
                t = time.perf_counter()
                if action == "slider move":
                    at.slider(key=f"score_slider_{j}").set_value(float(values[r])).run()
                else:
                    next(b for b in at.button if b.label == "Set present").click().run()
                walls.append(1e3 * (time.perf_counter() - t))
                if at.exception:
                    raise SystemExit(f"the app failed: {at.exception}")
            rows.append(
                (action, statistics.median(script_ms), max(script_ms), statistics.median(walls))
            )
        page_intervene.render = render
    print(
        "\n| edit | page script median (ms) | page script max (ms) | "
        "AppTest rerun median (ms) | target (ms) | median / target |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for action, med, worst, wall in rows:
        print(
            f"| {action} | {med:.0f} | {worst:.0f} | {wall:.0f} | {TARGET_MS:.0f} | "
            f"{med / TARGET_MS:.2f} |"
        )


if __name__ == "__main__":
    main()
