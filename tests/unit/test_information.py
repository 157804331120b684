import numpy as np
import pytest
from scipy.special import logsumexp

from cbm.exceptions import ValidationError
from cbm.metrics.information import (
    MIEstimate,
    information_audit,
    mutual_information_lower_bound,
    paired_ratio,
)


def binary_symmetric_channel(n: int, p: float, seed: int):
    """Y a fair bit, X = Y flipped with probability p: I = ln 2 - H(p) exactly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.where(rng.random(n) < p, 1 - y, y).astype(float)[:, None]
    return x, y, np.log(2) + p * np.log(p) + (1 - p) * np.log(1 - p)


def test_binary_symmetric_channel_within_error_bar():
    x, y, truth = binary_symmetric_channel(3000, 0.1, seed=0)
    est = mutual_information_lower_bound(x, y, Cs=(1e-4, 1.0, 10.0))
    lo, hi = est.interval()
    assert lo <= truth <= hi
    assert est.se < 0.02
    assert est.bits == pytest.approx(est.nats / np.log(2))


def test_interval_is_clipped_at_zero():
    est = MIEstimate(nats=-0.01, se=0.001, terms=np.zeros(3), C=1.0)
    assert est.interval() == (0.0, 0.0)


def test_paired_ratio_hand_computed():
    a = MIEstimate(1.0, 0.0, np.array([1.0, 1.0, 1.0]), 1.0)
    b = MIEstimate(2.0, 0.0, np.array([2.0, 2.0, 2.0]), 1.0)
    ratio, se = paired_ratio(a, b)
    assert ratio == pytest.approx(0.5) and se == pytest.approx(0.0)


def test_lower_bound_rejects_tiny_classes():
    with pytest.raises(ValidationError, match="rarest label"):
        mutual_information_lower_bound(np.zeros((6, 1)), np.array([0, 0, 0, 0, 0, 1]))


def test_information_audit_rows_and_fractions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    emb = rng.standard_normal((600, 6)) + 2.0 * np.eye(3, 6)[y]
    scores = emb[:, [0, 1, 4]]  # keeps two of the three informative directions
    table = information_audit(emb, scores, y, ranking=[0, 1, 2], ks=(1, 5), Cs=(1.0,))
    assert table["features"].tolist() == ["embedding", "concept scores", "top-1 concepts"]
    assert table["fraction"].iloc[0] == pytest.approx(1.0)
    assert 0.3 < table["fraction"].iloc[1] < 0.95  # lost one of three classes' signal
    assert table["fraction"].iloc[2] < table["fraction"].iloc[1]


# -- validation against known mutual information (slow lane) ---------------------


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
