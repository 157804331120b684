"""The MI lower bound against known mutual information on five synthetic cases."""

import numpy as np
import pytest
from scipy.special import logsumexp

from cbm.metrics.information import mutual_information_lower_bound


def binary_symmetric_channel(n: int, p: float, seed: int):
    """Y a fair bit, X = Y flipped with probability p: I = ln 2 - H(p) exactly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.where(rng.random(n) < p, 1 - y, y).astype(float)[:, None]
    return x, y, np.log(2) + p * np.log(p) + (1 - p) * np.log(1 - p)


def gaussian_classes(n: int, k: int, d: int, sep: float, seed: int):
    """k classes with unit-covariance Gaussian features; MI by Monte Carlo (400k draws)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, d)) * sep

    def draw(m: int):
        y = rng.integers(0, k, m)
        return means[y] + rng.standard_normal((m, d)), y

    x, y = draw(n)
    xt, yt = draw(400_000)
    loglik = -0.5 * ((xt[:, None, :] - means[None]) ** 2).sum(-1)
    post = loglik - logsumexp(loglik, axis=1, keepdims=True)
    return x, y, float(post[np.arange(yt.size), yt].mean() + np.log(k))


def independent(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 4, n), 0.0


CASES = {
    "bsc p=0.1": lambda: binary_symmetric_channel(3000, 0.1, 0),
    "bsc p=0.3": lambda: binary_symmetric_channel(3000, 0.3, 1),
    "gauss k=3 d=2": lambda: gaussian_classes(3000, 3, 2, 1.0, 2),
    "gauss k=5 d=8": lambda: gaussian_classes(3000, 5, 8, 0.6, 3),
    "independent d=10": lambda: independent(3000, 10, 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_known_mi_within_error_bar(name):
    x, y, truth = CASES[name]()
    est = mutual_information_lower_bound(x, y)
    lo, hi = est.interval()
    print(f"{name}: true {truth:.4f} nats, estimate {est.nats:.4f} +- {1.96 * est.se:.4f}")
    assert lo <= truth <= hi
