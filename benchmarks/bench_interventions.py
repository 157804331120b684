"""Batched intervention curves vs a straightforward per-image loop (the peer).

The peer is what one writes first: for each image, for each step, try every remaining
concept as present and as absent through ``model.proba_from_scores`` on a one-row copy,
score it (ECTP / EUDTP), intervene on the best. ``cbm.interventions`` does the same
arithmetic for all images and candidates at once. Both produce the same curve (checked).

Run: PYTHONPATH=. python benchmarks/bench_interventions.py [--n 2000] [--peer-n 200]
Data: shapes-world concepts embedded synthetically (tests/unit/intervention_world.py),
20 concepts, 9 classes, NEC 3 head; speed does not depend on the backbone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from intervention_world import make_world  # noqa: E402

from cbm.interventions import (  # noqa: E402
    STRATEGIES,
    ConceptCalibration,
    Intervener,
    InterventionValues,
    intervention_curve,
    intervention_curves,
)


def peer_curve(model, scores, labels, targets, values, calibration, strategy):
    """Per-image, per-step, per-candidate loop through the model's public API."""
    n, k = scores.shape
    wrong = np.zeros(k + 1)
    p_concept = calibration.proba(scores)
    for i in range(n):
        s = scores[i : i + 1].copy()
        remaining = list(range(k))
        q = model.proba_from_scores(s)[0]
        wrong[0] += q.argmax() != labels[i]
        for t in range(k):
            best, best_j = -np.inf, remaining[0]
            for j in remaining:
                gains = []
                for target in (values.present[j], values.absent[j]):
                    s2 = s.copy()
                    s2[0, j] = target
                    p = model.proba_from_scores(s2)[0]
                    if strategy == "ectp":
                        gains.append(float(np.sum(p * (np.log(p) - np.log(q)))))
                    else:
                        gains.append(float(-np.sum(p * np.log(p))))
                pj = p_concept[i, j]
                crit = pj * gains[0] + (1 - pj) * gains[1]
                if strategy == "eudtp":
                    crit = float(-np.sum(q * np.log(q))) - crit
                if crit > best:
                    best, best_j = crit, j
            remaining.remove(best_j)
            s[0, best_j] = targets[i, best_j]
            q = model.proba_from_scores(s)[0]
            wrong[t + 1] += q.argmax() != labels[i]
    return wrong / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="test images for the batched code")
    ap.add_argument("--peer-n", type=int, default=200, help="test images for the peer loop")
    args = ap.parse_args()
    model, train, test = make_world(n_train=1000, n_test=args.n)
    values = InterventionValues.from_ground_truth(
        model.concept_scores(train.embeddings), train.concepts
    )
    cal = ConceptCalibration.from_values(values)
    iv = Intervener(model, values, cal)
    scores = model.concept_scores(test.embeddings)
    targets = values.targets(test.concepts)
    rows = []
    with threadpool_limits(limits=1):
        for strategy in ("ectp", "eudtp"):
            t0 = time.process_time()
            ours = intervention_curve(iv, scores, test.labels, targets, strategy)
            t_ours = (time.process_time() - t0) / args.n
            m = args.peer_n
            t0 = time.process_time()
            peer = peer_curve(
                model, scores[:m], test.labels[:m], targets[:m], values, cal, strategy
            )
            t_peer = (time.process_time() - t0) / m
            small = intervention_curve(iv, scores[:m], test.labels[:m], targets[:m], strategy)
            same = bool(np.allclose(small.errors, peer, atol=1.5 / m))
            rows.append((strategy, t_ours * 1e3, t_peer * 1e3, t_peer / t_ours, same))
        t0 = time.process_time()
        for strategy in STRATEGIES:
            intervention_curve(iv, scores, test.labels, targets, strategy)
        t_all = time.process_time() - t0
        t_more = {}
        for granularity in ("concept", "group"):
            g_iv = Intervener(model, values, cal, granularity=granularity)
            for budget in ("image", "batch"):
                if (granularity, budget) == ("concept", "image"):
                    continue  # measured above
                t0 = time.process_time()
                intervention_curves(g_iv, scores, test.labels, targets, budget=budget)
                t_more[granularity, budget] = time.process_time() - t0
    print(
        f"CPU time (process_time), full curves, 20 concepts, 9 classes, one BLAS thread; "
        f"batched on {args.n} images, peer on {args.peer_n}"
    )
    print(
        f"{'strategy':<9}{'batched ms/img':>16}{'peer ms/img':>14}{'speed-up':>10}"
        f"{'same curve':>12}"
    )
    for name, ours, peer_ms, ratio, same in rows:
        print(f"{name:<9}{ours:>16.3f}{peer_ms:>14.2f}{ratio:>9.0f}x{str(same):>12}")
    print(f"all six strategies, {args.n} images, full curves: {t_all:.2f} s")
    for (granularity, budget), t in t_more.items():
        print(f"  same at {granularity} level, {budget} budget (RAND x5): {t:.2f} s")


if __name__ == "__main__":
    main()
