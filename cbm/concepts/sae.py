"""A sparse autoencoder over embeddings: concept discovery without a word list.

Discover-then-Name trains an SAE on CLIP image embeddings and reads each latent's
decoder direction as a concept. This estimator is that SAE, written so that it runs
on any embeddings a user has (in memory or memory-mapped on disk), on CPU or GPU:

* ``activation="topk"`` keeps the ``k`` largest pre-activations (exact L0 = k);
  ``activation="relu"`` is ReLU with an L1 penalty of weight ``l1_coeff``.
* Decoder rows are kept at unit norm (gradient projected, rows renormalised after
  each step), so a latent's code is its coordinate along a unit direction and the
  L1 penalty cannot be dodged by growing the decoder.
* A learned pre-encoder bias ``b_pre`` (initialised at the data mean when
  ``center=True``) is subtracted before encoding and added back after decoding.
* Inputs are divided by one scalar (the RMS norm of the centred data), so the
  hyper-parameters mean the same for every backbone and the decoder directions stay in
  the backbone's embedding space.
* Latents that fired on no sample during a window of ``resample_every`` steps are
  dead; they are re-initialised towards badly reconstructed samples (as in Anthropic's
  "Towards Monosemanticity") with their Adam state reset.

The training loop is written here rather than taken from ``sae-lens`` or
``overcomplete`` because neither reads memory-mapped arrays, saves to our artefact
format, or runs without pulling their own training stacks; ``benchmarks/bench_sae.py``
compares their throughput with ours.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

import cbm
from cbm.backbones.base import resolve_device
from cbm.exceptions import ConfigurationError, ValidationError
from cbm.io import (
    SCHEMA_VERSION,
    check_config,
    check_sha256,
    expect_array,
    read_arrays,
    read_json,
    write_arrays,
    write_json,
)

KIND = "sparse_autoencoder"
_PARAMS = ("W_enc", "b_enc", "W_dec", "b_pre")


def _check_rows(x: np.ndarray, first_row: int, name: str) -> None:
    if not np.isfinite(x).all():
        bad = first_row + np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValidationError(
            f"{name} contain NaN or infinite values (first bad rows: {bad[:5].tolist()}); "
            "drop or re-embed those samples"
        )


def _check_matrix(X: Any, name: str = "embeddings") -> np.ndarray:
    """Shape/dtype checks that do not read a memory-mapped array into RAM."""
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype.kind not in "fiu":
        raise ValidationError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValidationError(
            f"{name} must be a non-empty 2-D (n_samples, dim) array, got {X.shape}"
        )
    return X


def encode(
    x: torch.Tensor, params: dict[str, torch.Tensor], activation: str, k: int
) -> torch.Tensor:
    """Sparse codes of already-scaled inputs ``x`` (a pure function of the weights)."""
    pre = (x - params["b_pre"]) @ params["W_enc"] + params["b_enc"]
    if activation == "topk":
        vals, idx = pre.topk(k, dim=1)
        return torch.zeros_like(pre).scatter_(1, idx, torch.relu(vals))
    return torch.relu(pre)


def topk_forward(
    x: torch.Tensor, params: dict[str, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """TopK reconstruction that decodes only the ``k`` active latents per sample.

    ``embedding_bag`` sums ``k`` decoder rows per sample (``batch x k x dim`` work)
    instead of multiplying a mostly-zero ``batch x n_latents`` code matrix, which
    removes two of the five large matrix products of a training step (decoder forward
    and its backward for the codes). Returns the reconstruction and which latents fired.
    """
    W_dec = params["W_dec"]
    pre = (x - params["b_pre"]) @ params["W_enc"] + params["b_enc"]
    vals, idx = pre.topk(k, dim=1)
    vals = torch.relu(vals).to(W_dec.dtype)
    recon = F.embedding_bag(idx, W_dec, per_sample_weights=vals, mode="sum")
    fired = torch.zeros(W_dec.shape[0], dtype=torch.bool, device=x.device)
    fired[idx[vals > 0]] = True
    return recon + params["b_pre"], fired


class SparseAutoencoder(TransformerMixin, BaseEstimator):
    """Sparse autoencoder ``x -> z = act(W_enc^T (x - b_pre) + b_enc) -> W_dec^T z + b_pre``.

    Parameters
    ----------
    n_latents
        Dictionary size (number of concepts to discover).
    activation
        ``"topk"`` (exactly ``k`` active latents per sample) or ``"relu"`` (L1 penalty).
    k
        Active latents per sample for ``"topk"``.
    l1_coeff
        L1 weight for ``"relu"`` (inputs are scaled to unit mean squared norm).
    lr
        Adam learning rate.
    batch_size
        Samples per step.
    epochs
        Passes over the (sub)sampled training rows.
    max_steps
        Stop after this many steps, whatever ``epochs`` says.
    max_samples
        Train on a random subsample of at most this many rows (CPU default sized to
        finish in minutes; set ``None`` on a GPU to use every row).
    center
        Initialise the pre-encoder bias at the data mean (else at zero).
    resample_every
        Steps per dead-latent window; dead latents are resampled at the end of each
        window during the first ``resample_until`` fraction of training (0 disables).
    resample_until
        Fraction of training during which dead latents are resampled.
    dense_threshold
        A latent firing on more than this fraction of samples counts as dense.
    precision
        ``"float32"`` or ``"bfloat16"`` (autocast of the matrix products; weights and
        optimiser state stay float32).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    n_threads
        Torch CPU threads during fit/transform (``None``: leave torch's setting).
    seed
        Seed of initialisation, subsampling and batch order.
    progress
        Show a progress bar with the running loss.
    """

    def __init__(
        self,
        n_latents: int = 256,
        activation: str = "topk",
        k: int = 8,
        l1_coeff: float = 3e-2,
        lr: float = 3e-3,
        batch_size: int = 1024,
        epochs: float = 30.0,
        max_steps: int | None = None,
        max_samples: int | None = 200_000,
        center: bool = True,
        resample_every: int = 200,
        resample_until: float = 0.5,
        dense_threshold: float = 0.5,
        precision: str = "float32",
        device: str = "auto",
        n_threads: int | None = None,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.n_latents = n_latents
        self.activation = activation
        self.k = k
        self.l1_coeff = l1_coeff
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.max_samples = max_samples
        self.center = center
        self.resample_every = resample_every
        self.resample_until = resample_until
        self.dense_threshold = dense_threshold
        self.precision = precision
        self.device = device
        self.n_threads = n_threads
        self.seed = seed
        self.progress = progress

    # -- validation and helpers -----------------------------------------------------
    def _validate_params(self) -> None:
        if self.activation not in ("topk", "relu"):
            raise ConfigurationError(
                f"activation must be 'topk' or 'relu', got {self.activation!r}"
            )
        if self.precision not in ("float32", "bfloat16"):
            raise ConfigurationError(
                f"precision must be 'float32' or 'bfloat16', got {self.precision!r}"
            )
        if self.n_latents < 1 or self.batch_size < 1:
            raise ConfigurationError("n_latents and batch_size must be positive integers")
        if self.activation == "topk" and not 1 <= self.k <= self.n_latents:
            raise ConfigurationError(
                f"k must be between 1 and n_latents ({self.n_latents}), got {self.k}"
            )
        if self.l1_coeff < 0 or self.lr <= 0 or self.epochs <= 0:
            raise ConfigurationError("l1_coeff must be >= 0, lr and epochs > 0")

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        if self.n_threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bfloat16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _rows(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (sorted, for sequential reads from a memmap), checked finite."""
        batch = np.asarray(X[idx], dtype=np.float32)
        _check_rows(batch, 0, "embeddings")
        return batch

    def _torch_params(self, device: torch.device) -> dict[str, torch.Tensor]:
        return {p: torch.from_numpy(getattr(self, p + "_")).to(device) for p in _PARAMS}

    # -- fitting -------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: object = None) -> SparseAutoencoder:
        """Train on embeddings ``X`` ``(n_samples, dim)``: an array or an ``np.memmap``.

        Rows are read batch by batch, so a memory-mapped file larger than RAM works.
        """
        self._validate_params()
        X = _check_matrix(X)
        device = resolve_device(self.device)
        rng = np.random.default_rng(self.seed)
        n, d = X.shape
        rows = np.arange(n)
        if self.max_samples is not None and n > self.max_samples:
            rows = np.sort(rng.choice(n, self.max_samples, replace=False))
        steps_per_epoch = max(1, int(np.ceil(rows.size / self.batch_size)))
        total = int(np.ceil(self.epochs * steps_per_epoch))
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        # Statistics from a sample of rows: the mean for b_pre and one scale factor.
        probe = self._rows(X, np.sort(rng.choice(rows, min(rows.size, 20_000), replace=False)))
        mean = probe.mean(0) if self.center else np.zeros(d, np.float32)
        rms = float(np.sqrt(((probe - mean) ** 2).sum(1).mean()))
        if not rms > 0:
            raise ValidationError("all training embeddings are identical; nothing to encode")
        self.input_scale_ = np.float32(rms)
        self.n_features_in_ = d
        # In-RAM arrays go to the device once; memmaps stream batch by batch.
        resident = None
        if not isinstance(X, np.memmap):
            resident = torch.from_numpy(self._rows(X, rows) / rms).to(device)
        with self._threads():
            start = time.perf_counter()
            params = self._train(X, rows, resident, mean / rms, total, device, rng)
            seconds = time.perf_counter() - start
        for name, value in params.items():
            setattr(self, name + "_", value.detach().float().cpu().numpy())
        self.n_steps_ = total
        self.report_ = self.evaluate(self._rows(X, probe_rows(rows, rng)))
        self.report_.update(
            n_train_samples=int(rows.size),
            n_steps=total,
            seconds=round(seconds, 3),
            samples_per_second=round(total * self.batch_size / max(seconds, 1e-9), 1),
        )
        return self

    def _init_params(self, d: int, mean: np.ndarray, device: torch.device) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(self.seed)
        W_dec = torch.randn(self.n_latents, d, generator=gen)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        return {
            "W_enc": torch.nn.Parameter(W_dec.T.clone().contiguous().to(device)),
            "b_enc": torch.nn.Parameter(torch.zeros(self.n_latents, device=device)),
            "W_dec": torch.nn.Parameter(W_dec.to(device)),
            "b_pre": torch.nn.Parameter(torch.from_numpy(mean.astype(np.float32)).to(device)),
        }

    def _train(
        self,
        X: np.ndarray,
        rows: np.ndarray,
        resident: torch.Tensor | None,
        mean: np.ndarray,
        total: int,
        device: torch.device,
        rng: np.random.Generator,
    ) -> dict[str, torch.Tensor]:
        from tqdm.auto import tqdm

        params = self._init_params(X.shape[1], mean, device)
        opt = torch.optim.Adam(list(params.values()), lr=self.lr)
        fired = torch.zeros(self.n_latents, dtype=torch.bool, device=device)
        self.loss_curve_: list[float] = []
        self.resampled_: list[int] = []
        order = np.empty(0, dtype=np.int64)
        scale = float(self.input_scale_)
        bar = tqdm(range(total), desc="training SAE", disable=not self.progress, unit="step")
        for step in bar:
            if order.size < self.batch_size:
                order = np.concatenate([order, rng.permutation(rows.size)])
            pick, order = order[: self.batch_size], order[self.batch_size :]
            if resident is not None:
                x = resident[torch.from_numpy(pick).to(device)]
            else:
                x = torch.from_numpy(self._rows(X, rows[np.sort(pick)]) / scale).to(device)
            with self._autocast(device):
                if self.activation == "topk":
                    recon, active = topk_forward(x, params, self.k)
                else:
                    z = encode(x, params, self.activation, self.k)
                    recon = z @ params["W_dec"] + params["b_pre"]
                    active = (z > 0).any(0)
                loss = ((recon.float() - x) ** 2).sum(1).mean()
                if self.activation == "relu" and self.l1_coeff > 0:
                    loss = loss + self.l1_coeff * z.float().sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            W_dec = params["W_dec"]
            with torch.no_grad():
                # Only the part of the gradient that keeps rows at unit norm.
                g = W_dec.grad
                if g is not None:
                    g -= (g * W_dec).sum(1, keepdim=True) * W_dec
                opt.step()
                W_dec /= W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
                fired |= active
            if step % 10 == 0 or step == total - 1:
                value = float(loss.detach())
                self.loss_curve_.append(value)
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
            window_end = self.resample_every > 0 and (step + 1) % self.resample_every == 0
            if window_end:
                if step + 1 < self.resample_until * total:
                    dead = torch.nonzero(~fired).flatten()
                    if dead.numel():
                        sample = resident if resident is not None else x
                        self._resample(params, opt, dead, sample, rng)
                    self.resampled_.append(int(dead.numel()))
                fired.zero_()
        bar.close()
        return params

    def _resample(
        self,
        params: dict[str, Any],
        opt: torch.optim.Optimizer,
        dead: torch.Tensor,
        data: torch.Tensor,
        rng: np.random.Generator,
    ) -> None:
        """Point dead latents at badly reconstructed samples; reset their Adam state."""
        with torch.no_grad():
            pick = rng.choice(data.shape[0], min(data.shape[0], 8192), replace=False)
            x = data[torch.from_numpy(pick).to(data.device)]
            z = encode(x, params, self.activation, self.k)
            resid = x - (z @ params["W_dec"] + params["b_pre"])
            err = (resid**2).sum(1).double()
            chosen = torch.multinomial(err + 1e-12, dead.numel(), replacement=True)
            new_dec = resid[chosen]
            new_dec /= new_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
            alive = torch.ones(self.n_latents, dtype=torch.bool, device=dead.device)
            alive[dead] = False
            enc_norm = params["W_enc"][:, alive].norm(dim=0).mean() if alive.any() else 1.0
            params["W_dec"][dead] = new_dec
            params["W_enc"][:, dead] = new_dec.T * 0.2 * enc_norm
            params["b_enc"][dead] = 0.0
            for name, rows_axis in (("W_dec", 0), ("W_enc", 1), ("b_enc", 0)):
                state = opt.state.get(params[name], {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        state[key].index_fill_(rows_axis, dead, 0.0)

    # -- using a fitted SAE ----------------------------------------------------------
    def _checked(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "W_dec_")
        X = _check_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValidationError(
                f"embeddings have dimension {X.shape[1]}, but this SAE was trained on "
                f"{self.n_features_in_} (embeddings from another backbone?)"
            )
        return X

    def transform(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Latent codes ``(n_samples, n_latents)`` (float32, non-negative, sparse)."""
        X = self._checked(X)
        device = resolve_device(self.device)
        params = self._torch_params(device)
        out = np.empty((X.shape[0], self.n_latents), np.float32)
        with self._threads(), torch.inference_mode():
            for s in range(0, X.shape[0], batch_size):
                rows = np.asarray(X[s : s + batch_size], dtype=np.float32)
                _check_rows(rows, s, "embeddings")
                x = torch.from_numpy(rows / self.input_scale_).to(device)
                z = encode(x, params, self.activation, self.k)
                out[s : s + rows.shape[0]] = (z * float(self.input_scale_)).cpu().numpy()
        return out

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Reconstructed embeddings from codes ``Z``."""
        check_is_fitted(self, "W_dec_")
        Z = np.asarray(Z, dtype=np.float32)
        if Z.ndim != 2 or Z.shape[1] != self.n_latents:
            raise ValidationError(f"codes must be (n, {self.n_latents}), got {Z.shape}")
        return Z @ self.W_dec_ + self.b_pre_ * self.input_scale_

    @property
    def decoder_directions_(self) -> np.ndarray:
        """``(n_latents, dim)`` unit directions in the backbone's embedding space."""
        check_is_fitted(self, "W_dec_")
        return self.W_dec_

    def evaluate(self, X: np.ndarray) -> dict[str, float]:
        """Reconstruction R², mean L0, dead and dense fractions on embeddings ``X``.

        R² is ``1 - SSE / SST`` over all coordinates (SST around ``X``'s mean); a latent
        is dead when it fires on none of the samples, dense when it fires on more than
        ``dense_threshold`` of them.
        """
        X = np.asarray(self._checked(X), dtype=np.float32)
        Z = self.transform(X)
        recon = self.inverse_transform(Z)
        sse = float(((X - recon) ** 2).sum())
        sst = float(((X - X.mean(0)) ** 2).sum())
        freq = (Z > 0).mean(0)
        return {
            "r2": 1.0 - sse / sst if sst > 0 else float("nan"),
            "mean_l0": float((Z > 0).sum(1).mean()),
            "dead_fraction": float((freq == 0).mean()),
            "dense_fraction": float((freq > self.dense_threshold).mean()),
            "n_eval_samples": int(X.shape[0]),
        }

    def score(self, X: np.ndarray, y: object = None) -> float:
        """Reconstruction R² (higher is better)."""
        return self.evaluate(X)["r2"]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "W_dec_")
        return np.array([f"latent{i}" for i in range(self.n_latents)], dtype=object)

    # -- persistence -------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``sae.safetensors`` into ``directory``."""
        check_is_fitted(self, "W_dec_")
        directory = Path(directory)
        arrays = {p: getattr(self, p + "_") for p in _PARAMS}
        arrays["input_scale"] = np.asarray([self.input_scale_], np.float32)
        sha = write_arrays(directory / "sae.safetensors", arrays)
        write_json(
            directory / "config.json",
            {
                "kind": KIND,
                "schema_version": SCHEMA_VERSION,
                "cbm_version": cbm.__version__,
                "params": self.get_params(),
                "n_features_in": int(self.n_features_in_),
                "arrays_sha256": sha,
                "report": self.report_,
                "loss_curve_every_10_steps": [round(v, 6) for v in self.loss_curve_],
                "resampled_per_window": self.resampled_,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> SparseAutoencoder:
        """Load a saved SAE (no pickle); ``device`` overrides the saved one."""
        directory = Path(directory)
        cfg_path = directory / "config.json"
        config = check_config(read_json(cfg_path), KIND, cfg_path)
        try:
            params = dict(config["params"])
            d = int(config["n_features_in"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValidationError(f"{cfg_path}: missing or malformed field {err}") from err
        if device is not None:
            params["device"] = device
        sae = cls(**params)
        sae._validate_params()
        path = directory / "sae.safetensors"
        check_sha256(path, config.get("arrays_sha256"))
        arrays = read_arrays(path)
        m = sae.n_latents
        shapes = {"W_enc": (d, m), "b_enc": (m,), "W_dec": (m, d), "b_pre": (d,)}
        for p in _PARAMS:
            setattr(sae, p + "_", expect_array(arrays, p, shapes[p], path).astype(np.float32))
        sae.input_scale_ = np.float32(expect_array(arrays, "input_scale", (1,), path)[0])
        sae.n_features_in_ = d
        sae.report_ = dict(config.get("report") or {})
        sae.loss_curve_ = list(config.get("loss_curve_every_10_steps") or [])
        sae.resampled_ = list(config.get("resampled_per_window") or [])
        return sae


def probe_rows(rows: np.ndarray, rng: np.random.Generator, n: int = 10_000) -> np.ndarray:
    """A sorted random subset of ``rows`` for the training report."""
    return np.sort(rng.choice(rows, min(rows.size, n), replace=False))
