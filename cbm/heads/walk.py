"""The target-NEC walk of :class:`cbm.heads.sparse.SparseLinearHead`: few path points.

A fixed geometric grid spends most of its points far below a small target NEC, each
costing a full KKT pass; here the next lambda is predicted from the NEC curve instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cbm.exceptions import ConfigurationError
from cbm.heads.path import PathSolver, Solution


def walk_to_target(
    solver: PathSolver,
    grid: Callable[[int], float],
    target: float,
    n_lambdas: int,
    search_steps: int,
    lambda_min_ratio: float,
    tol: float,
    l1_ratio: float,
) -> Solution:
    """Few path points to the target NEC, then land on it.

    Below the target the next lambda is extrapolated from the last two points' NEC
    against log-lambda (at least one grid step, at most a ratio of 0.75 so the
    strong rule stays tight); once a point overshoots, the bracket is narrowed by
    safeguarded secant steps (``search_steps`` at most) until the NEC is within one
    weight or 2 % of the target. Each landing point warm-starts from the densest head
    found so far within the target. Points predicted under half the target only
    warm-start the next and are solved to a loose tolerance; the rest to the tight one.
    """
    best: Solution | None = None
    log_grid = math.log(grid(0) / grid(1)) if n_lambdas > 1 else math.log(1.0 / 0.9)
    max_log_step = math.log(1.0 / 0.75)
    close = max(1.0 / solver.n_classes, 0.02 * target)
    n_features = solver.design.k
    points: list[tuple[float, float]] = []  # (log lambda, NEC) solved so far
    lo: tuple[float, float] | None = None  # nearest point at or under the target
    hi: tuple[float, float] | None = None  # nearest point over it
    log_lam, landing = math.log(solver.lambda_max), 0
    log_min = log_lam + math.log(lambda_min_ratio)
    near = False  # far from the target, points only warm-start: loose tolerance
    for _ in range(n_lambdas + search_steps):
        lam = math.exp(log_lam)
        loose = min(tol, 0.1 * l1_ratio * lam)  # within 10 % of the penalty
        step = solver.solve(lam, tol=None if near else loose)
        if not near and step.nec > 0.5 * target:  # closer than predicted: solve tightly
            near = True
            step = solver.solve(lam)
        point = (log_lam, step.nec)
        if step.nec <= target:
            lo = point
            if best is None or step.nec >= best.step.nec:
                best = solver.snapshot(step)
            if target - best.step.nec <= close:
                break
        else:
            hi = point
        if step.n_nonzero == n_features * solver.n_classes:
            break
        points.append(point)
        if hi is not None and lo is not None and best is not None:
            landing += 1
            if landing > search_steps:
                break
            # Approach every landing point from the sparse side, as the walk did:
            # warm starts from a denser head land on denser approximate solutions.
            solver.restore(best)
            near = True
            # Aim half a tolerance under the target: NEC grows convexly here.
            frac = (target - 0.5 * close - lo[1]) / max(hi[1] - lo[1], 1e-12)
            log_lam = lo[0] + min(max(frac, 0.2), 0.8) * (hi[0] - lo[0])
            continue
        if hi is not None or log_lam <= log_min:  # over at the first point, or grid end
            break
        dlog = log_grid
        if len(points) >= 2 and points[-1][1] > points[-2][1] > 0.0:
            slope = (points[-1][1] - points[-2][1]) / (points[-2][0] - points[-1][0])
            dlog = min(max((target - step.nec) / slope, log_grid), max_log_step)
            near = step.nec + slope * dlog >= 0.5 * target
        log_lam = max(log_lam - dlog, log_min)
    return found(best, target)


def found(best: Solution | None, target: float | None) -> Solution:
    """``best``, or the error that says the target is below what lambda_max gives."""
    if best is None:
        raise ConfigurationError(
            f"even at lambda_max the head uses NEC above the target {target}; "
            "the target is too small for this data"
        )
    return best
