import json

import numpy as np
import pytest

from cbm.concepts.sae import SparseAutoencoder
from cbm.exceptions import ArtefactError, ConfigurationError, ValidationError


def sparse_world(n=3000, d=24, m=12, p=0.15, seed=0):
    """Embeddings that are sparse non-negative mixtures of m unit directions, plus an offset."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((m, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = (rng.random((n, m)) < p) * rng.uniform(1, 2, (n, m))
    X = Z @ D + 0.01 * rng.standard_normal((n, d)) + 2.0
    return X.astype(np.float32), D, Z


def small_sae(**kw):
    params = dict(n_latents=24, k=3, epochs=15, batch_size=128, device="cpu", n_threads=1)
    params.update(kw)
    return SparseAutoencoder(**params)


@pytest.fixture(scope="module")
def world():
    return sparse_world()


@pytest.fixture(scope="module")
def topk(world):
    return small_sae().fit(world[0])


def test_topk_recovers_the_true_dictionary_and_reports(world, topk):
    X, D, _ = world
    assert topk.fit(X) is not None
    best = np.abs(topk.decoder_directions_ @ D.T).max(0)
    assert (best > 0.9).mean() >= 0.75
    rep = topk.report_
    assert rep["r2"] > 0.85
    assert rep["mean_l0"] <= 3.0
    assert 0.0 <= rep["dead_fraction"] < 0.5 and rep["dense_fraction"] == 0.0
    assert rep["samples_per_second"] > 0 and len(topk.loss_curve_) > 5
    assert topk.loss_curve_[-1] < topk.loss_curve_[0]


def test_decoder_rows_stay_unit_norm_and_codes_are_sparse(world, topk):
    np.testing.assert_allclose(np.linalg.norm(topk.W_dec_, axis=1), 1.0, atol=1e-5)
    Z = topk.transform(world[0][:100])
    assert Z.shape == (100, 24) and Z.min() >= 0
    assert ((Z > 0).sum(1) <= 3).all()
    assert list(topk.get_feature_names_out()[:2]) == ["latent0", "latent1"]


def test_reconstruction_is_in_embedding_units(world, topk):
    X = world[0][:200]
    recon = topk.inverse_transform(topk.transform(X))
    assert np.abs(recon.mean(0) - X.mean(0)).max() < 0.1
    assert topk.score(X) > 0.8


def test_relu_l1_gives_sparser_codes_with_a_larger_penalty(world):
    X = world[0]
    weak = small_sae(activation="relu", l1_coeff=1e-4, epochs=10).fit(X)
    strong = small_sae(activation="relu", l1_coeff=0.1, epochs=10).fit(X)
    assert strong.report_["mean_l0"] < weak.report_["mean_l0"]
    assert strong.report_["r2"] > 0.5


def test_fit_from_memmap_matches_in_memory(world, tmp_path):
    X = world[0][:1500]
    path = tmp_path / "emb.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    a = small_sae(epochs=4).fit(X)
    b = small_sae(epochs=4).fit(mm)
    np.testing.assert_allclose(a.W_dec_, b.W_dec_, atol=1e-4)


def test_subsample_and_max_steps_are_respected(world):
    sae = small_sae(max_samples=500, max_steps=7).fit(world[0])
    assert sae.report_["n_train_samples"] == 500 and sae.n_steps_ == 7


def test_bfloat16_trains_to_similar_quality(world):
    X = world[0][:1500]
    fp32 = small_sae(epochs=10).fit(X)
    bf16 = small_sae(epochs=10, precision="bfloat16").fit(X)
    assert bf16.report_["r2"] > fp32.report_["r2"] - 0.05


def test_dead_latents_are_detected_and_resampled(world):
    X = world[0][:1500]
    # 48 latents for 12 true directions at k=2: many latents never fire.
    kw = dict(n_latents=48, k=2, epochs=20, resample_every=20)
    on = small_sae(resample_until=0.6, **kw).fit(X)
    off = small_sae(resample_every=0, **{k: v for k, v in kw.items() if k != "resample_every"})
    off.fit(X)
    assert sum(on.resampled_) > 0 and off.resampled_ == []
    # only windows ending in the first 60% of training resample
    assert len(on.resampled_) == int(0.6 * on.n_steps_) // 20
    assert not np.allclose(on.W_dec_, off.W_dec_)
    np.testing.assert_allclose(np.linalg.norm(on.W_dec_, axis=1), 1.0, atol=1e-5)


def test_save_load_round_trip(topk, world, tmp_path):
    topk.save(tmp_path / "sae")
    back = SparseAutoencoder.load(tmp_path / "sae")
    np.testing.assert_array_equal(back.transform(world[0][:50]), topk.transform(world[0][:50]))
    assert back.report_ == topk.report_ and back.get_params() == topk.get_params()
    assert sorted(p.name for p in (tmp_path / "sae").iterdir()) == [
        "config.json",
        "sae.safetensors",
    ]


def test_load_refuses_tampered_shapes_and_pickles(topk, tmp_path):
    topk.save(tmp_path / "sae")
    cfg = json.loads((tmp_path / "sae" / "config.json").read_text())
    cfg["params"]["n_latents"] = 99
    (tmp_path / "sae" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="shape"):
        SparseAutoencoder.load(tmp_path / "sae")
    (tmp_path / "sae" / "sae.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(ArtefactError, match="sha256"):
        SparseAutoencoder.load(tmp_path / "sae")
    del cfg["arrays_sha256"]
    (tmp_path / "sae" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtefactError, match="pickle"):
        SparseAutoencoder.load(tmp_path / "sae")


def test_helpful_errors(world, topk):
    with pytest.raises(ConfigurationError, match="activation"):
        small_sae(activation="gelu").fit(world[0])
    with pytest.raises(ConfigurationError, match="k must be"):
        small_sae(k=100).fit(world[0])
    with pytest.raises(ValidationError, match="dimension 5"):
        topk.transform(np.zeros((3, 5), np.float32))
    bad = world[0][:300].copy()
    bad[7, 0] = np.nan
    with pytest.raises(ValidationError, match=r"NaN.*\[7\]"):
        small_sae(epochs=1).fit(bad)
