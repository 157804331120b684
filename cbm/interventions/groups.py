"""Selection criteria for a group of concepts answered in one intervention.

A group intervention (e.g. "colour") asks the expert for the group's value and sets
every member to its true value at once. Shin et al. define the criteria for one
binary concept; for a group we apply the same definitions to the group's *outcomes*,
the states the expert may report, each with its predicted probability:

``exclusive``    exactly one member is true (one-hot dimensions such as the shapes
                 world's colour): ``m`` outcomes "member ``o`` present, the others
                 absent", with probability ``p_o / sum_j p_j`` (the members' concept
                 probabilities normalised over the group);
``independent``  members are independent yes/no questions (multi-label groups such as
                 CUB's "wing colour"): the ``2**m`` joint outcomes, with probability
                 ``prod_j p_j**b_j (1 - p_j)**(1 - b_j)``.

Then, with ``f`` the class softmax and ``s | o`` the scores with the group set to
outcome ``o``::

    UCP   = entropy of the outcome distribution
    LCP   = 1 - the most probable outcome's probability
    ECTP  = sum_o pi_o KL(f(s | o) || f(s))
    EUDTP = H(f(s)) - sum_o pi_o H(f(s | o))

A one-member group is a yes/no question (``independent``), whatever the mode: these
reduce to the concept-level definitions. (Averaging the members' own criteria instead,
as the first version did, scores outcomes that cannot happen, e.g. "red present and
every other colour as it was", and put group-level EUDTP above random selection on the
shapes world: ``docs/interventions.md``.)
"""

from __future__ import annotations

import numpy as np

from cbm.exceptions import ValidationError
from cbm.interventions.strategies import _CHUNK_ELEMENTS, _FLOOR, Units, _log_softmax

GROUP_OUTCOMES: tuple[str, ...] = ("exclusive", "independent")
MAX_INDEPENDENT_MEMBERS = 12  # 4,096 joint outcomes per group


def check_group_outcomes(mode: str) -> str:
    if mode not in GROUP_OUTCOMES:
        raise ValidationError(
            f"group_outcomes must be one of {', '.join(GROUP_OUTCOMES)}, got {mode!r}"
        )
    return mode


def outcome_table(n_members: int, mode: str) -> np.ndarray:
    """``(n_outcomes, n_members)`` bool: which members each outcome makes present."""
    if mode == "exclusive" and n_members > 1:
        return np.eye(n_members, dtype=bool)
    if n_members > MAX_INDEPENDENT_MEMBERS:
        raise ValidationError(
            f"a group of {n_members} independent concepts has 2**{n_members} joint outcomes "
            f"(at most {MAX_INDEPENDENT_MEMBERS} members); use group_outcomes='exclusive' if "
            "exactly one member is ever true, or concept granularity"
        )
    codes = np.arange(2**n_members)[:, None]
    return ((codes >> np.arange(n_members)[None, :]) & 1).astype(bool)


def outcome_proba(member_proba: np.ndarray, table: np.ndarray, mode: str) -> np.ndarray:
    """``(n, n_outcomes)`` probability of each outcome from the members' ``(n, m)``."""
    p = np.clip(np.asarray(member_proba, np.float64), 1e-12, 1.0 - 1e-12)
    if mode == "exclusive" and p.shape[1] > 1:
        return p / p.sum(axis=1, keepdims=True)
    t = table.astype(np.float64)
    return np.exp(np.log(p) @ t.T + np.log1p(-p) @ (1.0 - t).T)


def group_criteria(
    strategy: str,
    scores: np.ndarray,
    logits: np.ndarray,
    proba: np.ndarray,
    weights: np.ndarray,
    present: np.ndarray,
    absent: np.ndarray,
    units: Units,
    mode: str = "exclusive",
) -> np.ndarray:
    """Criterion ``(n, n_units)`` of each unit (higher = intervene sooner).

    For ``ucp``, ``lcp``, ``ectp`` and ``eudtp``; ``cctp`` (a sum of contributions) and
    ``rand`` need no outcomes. Batched over images and outcomes, one group at a time,
    in image chunks of bounded size.
    """
    check_group_outcomes(mode)
    n = scores.shape[0]
    out = np.zeros((n, len(units)))
    logits = np.maximum(logits, _FLOOR)
    log_q = _log_softmax(logits)
    h_now = -(np.exp(log_q) * log_q).sum(-1)
    for u, members in enumerate(units.membership):
        idx = np.flatnonzero(members)
        table = outcome_table(idx.size, mode)
        pi = outcome_proba(proba[:, idx], table, mode)
        if strategy == "ucp":
            out[:, u] = -(pi * np.log(np.clip(pi, 1e-300, 1.0))).sum(1)
            continue
        if strategy == "lcp":
            out[:, u] = 1.0 - pi.max(axis=1)
            continue
        if strategy not in ("ectp", "eudtp"):
            raise ValidationError(f"no group criterion for strategy {strategy!r}")
        w = weights[:, idx]  # (C, m)
        if not np.any(w):
            continue  # the group cannot move the prediction: no change, no decrease
        targets = np.where(table, present[idx], absent[idx])  # (o, m)
        step = max(1, _CHUNK_ELEMENTS // max(1, table.shape[0] * weights.shape[0]))
        for lo in range(0, n, step):
            sl = slice(lo, lo + step)
            delta = (targets[None] - scores[sl][:, None, idx]) @ w.T  # (b, o, C)
            log_p = _log_softmax(logits[sl][:, None, :] + delta)
            p = np.exp(log_p)
            if strategy == "ectp":
                kl = (p * (log_p - log_q[sl][:, None, :])).sum(-1)
                out[sl, u] = (pi[sl] * kl).sum(1)
            else:
                h = -(p * log_p).sum(-1)
                out[sl, u] = h_now[sl] - (pi[sl] * h).sum(1)
    return out
