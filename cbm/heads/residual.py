"""Hybrid head (Post-hoc CBM's PCBM-h): a residual on raw embeddings after the concepts.

The concept model's logits ``g(x)`` stay fixed; a ridge-regularised linear residual
``r(x) = V x + c`` on the raw embedding is fitted so that ``softmax(g + r)`` fits the
labels. Per prediction, ``residual_share`` says how much of the predicted class's
(centred) logit comes from the residual: the part the concepts do not explain.
The residual is stored beside the concept model (its own ``config.json`` +
safetensors), so :mod:`cbm.model` is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from cbm.exceptions import ConfigurationError
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
from cbm.model import ConceptBottleneckModel
from cbm.validation import check_embeddings, check_labels

KIND = "hybrid_concept_model"


class HybridModel:
    """A fitted concept model plus a residual linear head on the raw embedding.

    Parameters
    ----------
    model
        A fitted :class:`ConceptBottleneckModel` (kept frozen).
    l2
        Ridge strength on the residual weights (mean cross-entropy + ``l2/2 |V|^2``).
    max_iter
        L-BFGS iterations.
    """

    def __init__(self, model: ConceptBottleneckModel, l2: float = 1e-2, max_iter: int = 200):
        if l2 < 0:
            raise ConfigurationError(f"l2 must be >= 0, got {l2}")
        model._check_fitted()
        self.model = model
        self.l2 = float(l2)
        self.max_iter = int(max_iter)

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> HybridModel:
        dim = self.model.concept_embeddings.shape[1]
        X = check_embeddings(embeddings, "image embeddings", dim=dim)
        y = check_labels(labels, X.shape[0])
        g = torch.as_tensor(self.concept_logits(X))
        g = torch.where(torch.isfinite(g), g, torch.full_like(g, -1e9))
        Xt = torch.as_tensor(X, dtype=torch.float64)
        yt = torch.as_tensor(y, dtype=torch.long)
        V = torch.zeros(g.shape[1], dim, dtype=torch.float64, requires_grad=True)
        c = torch.zeros(g.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [V, c], max_iter=self.max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-7
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            logits = g + torch.addmm(c, Xt, V.T)
            loss = torch.nn.functional.cross_entropy(logits, yt) + 0.5 * self.l2 * (V**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_ = V.detach().numpy().copy()
        self.intercept_ = c.detach().numpy().copy()
        return self

    def concept_logits(self, embeddings: np.ndarray) -> np.ndarray:
        return self.model.logits_from_scores(self.model.concept_scores(embeddings))

    def residual_logits(self, embeddings: np.ndarray) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ConfigurationError("this hybrid model is not fitted: call fit first")
        return np.asarray(embeddings, np.float64) @ self.coef_.T + self.intercept_

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return self.concept_logits(embeddings) + self.residual_logits(embeddings)

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.logits(embeddings), axis=1)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.predict_proba(embeddings).argmax(axis=1)

    def residual_share(self, embeddings: np.ndarray) -> np.ndarray:
        """Per prediction, ``|r| / (|g| + |r|)`` for the predicted class, in ``[0, 1]``.

        Logits are centred over classes first (softmax ignores a shared shift), so the
        share compares what each part adds to the predicted class against the others.
        """
        g = self.concept_logits(embeddings)
        r = self.residual_logits(embeddings)
        finite = np.isfinite(g)
        g_c = g - np.where(finite, g, 0).sum(1, keepdims=True) / finite.sum(1, keepdims=True)
        r_c = r - r.mean(1, keepdims=True)
        k = (g + r).argmax(1)
        rows = np.arange(len(k))
        gk, rk = np.abs(g_c[rows, k]), np.abs(r_c[rows, k])
        return np.where(gk + rk > 0, rk / np.maximum(gk + rk, 1e-300), 0.0)

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """``concepts/`` (the concept model) + ``residual.safetensors`` + ``config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / "concepts")
        sha = write_arrays(
            directory / "residual.safetensors",
            {"residual_coef": self.coef_, "residual_intercept": self.intercept_},
        )
        write_json(
            directory / "config.json",
            {
                "kind": KIND,
                "schema_version": SCHEMA_VERSION,
                "l2": self.l2,
                "max_iter": self.max_iter,
                "arrays_sha256": sha,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> HybridModel:
        directory = Path(directory)
        cfg_path = directory / "config.json"
        config = check_config(read_json(cfg_path), KIND, cfg_path)
        model = ConceptBottleneckModel.load(directory / "concepts")
        path = directory / "residual.safetensors"
        check_sha256(path, config.get("arrays_sha256"))
        arrays = read_arrays(path)
        n_classes, dim = len(model.class_names), model.concept_embeddings.shape[1]
        hybrid = cls(model, float(config.get("l2", 1e-2)), int(config.get("max_iter", 200)))
        hybrid.coef_ = expect_array(arrays, "residual_coef", (n_classes, dim), path)
        hybrid.intercept_ = expect_array(arrays, "residual_intercept", (n_classes,), path)
        return hybrid
