"""``ConceptBottleneckModel``: embeddings -> concept scores -> sparse head -> class."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from scipy.special import softmax

import cbm
from cbm.concepts.bank import ConceptBank
from cbm.exceptions import ArtefactError, ValidationError
from cbm.heads.sparse import SparseLinearHead, nec
from cbm.io import (
    SCHEMA_VERSION,
    check_config,
    check_sha256,
    expect_array,
    read_arrays,
    read_json,
    reading_artefact,
    write_arrays,
    write_json,
)
from cbm.scores.cosine import CosineConceptScorer
from cbm.scores.sae import SAEConceptScorer
from cbm.validation import check_embeddings, check_labels

KIND = "concept_bottleneck_model"


@dataclass
class Explanation:
    """Why one image got its prediction: the concepts that pushed hardest."""

    predicted: str
    probability: float
    concepts: list[tuple[str, float, float]] = field(default_factory=list)
    """(concept, score, contribution to the predicted class), largest |contribution| first."""

    def __str__(self) -> str:
        lines = [f"{self.predicted} (p={self.probability:.2f}) because:"]
        for name, score, contrib in self.concepts:
            sign = "+" if contrib >= 0 else "-"
            lines.append(f"  {sign} {name:<28} score {score:+.2f}  contribution {contrib:+.2f}")
        return "\n".join(lines)


class ConceptBottleneckModel:
    """A concept scorer and a sparse linear head over its scores.

    Parameters
    ----------
    bank
        The concepts.
    concept_embeddings
        ``(n_concepts, dim)`` text embeddings of the bank's prompts, from ``backbone``.
    backbone
        The backbone's identity (``Backbone.identity()``), recorded in the model card so
        that images are embedded the same way later.
    head
        An unfitted :class:`SparseLinearHead` (default: NEC 5).
    scorer
        Concept scores from SAE codes instead of cosine to ``concept_embeddings``
        (see :func:`cbm.scores.sae.sae_bottleneck`).
    class_names
        Display name per class label; labels are ``0..n_classes-1`` indices into it.
    """

    def __init__(
        self,
        bank: ConceptBank,
        concept_embeddings: np.ndarray,
        backbone: dict[str, Any],
        class_names: tuple[str, ...] | list[str],
        head: SparseLinearHead | None = None,
        scorer: SAEConceptScorer | None = None,
    ) -> None:
        emb = check_embeddings(concept_embeddings, "concept embeddings")
        if emb.shape[0] != len(bank):
            raise ValidationError(
                f"concept bank {bank.name!r} has {len(bank)} concepts but "
                f"{emb.shape[0]} concept embeddings were given"
            )
        dim = backbone.get("embed_dim")
        if dim is not None and emb.shape[1] != dim:
            raise ValidationError(
                f"concept bank {bank.name!r} has text embeddings of dimension {emb.shape[1]}, "
                f"but the backbone {backbone.get('backbone_id')!r} produces {dim}"
            )
        self.bank = bank
        self.concept_embeddings = emb.astype(np.float32)
        self.backbone = dict(backbone)
        self.class_names = tuple(class_names)
        self.scorer: CosineConceptScorer | SAEConceptScorer = (
            scorer
            if scorer is not None
            else CosineConceptScorer(self.concept_embeddings, bank.concepts)
        )
        self.head = head if head is not None else SparseLinearHead()
        self.metrics: dict[str, Any] = {}
        self.training: dict[str, Any] = {}

    # -- fitting and prediction -------------------------------------------------------
    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> ConceptBottleneckModel:
        """Fit the scorer's standardisation and the head on training embeddings."""
        X = check_embeddings(embeddings, "image embeddings", dim=self.concept_embeddings.shape[1])
        y = check_labels(labels, X.shape[0])
        if y.size and (y.min() < 0 or y.max() >= len(self.class_names)):
            raise ValidationError(
                f"labels must be class indices in 0..{len(self.class_names) - 1}, "
                f"got values from {y.min()} to {y.max()}"
            )
        scores = self.scorer.fit(X).transform(X)
        self.head.fit(scores, y)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self.head, "coef_"):
            raise ArtefactError("this model is not fitted yet: call fit(embeddings, labels)")

    def concept_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Standardised concept scores ``(n, n_concepts)``."""
        self._check_fitted()
        return self.scorer.transform(embeddings)

    def logits_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """Class logits ``(n, n_classes)`` from (possibly edited) concept scores."""
        self._check_fitted()
        logits = np.asarray(scores, np.float64) @ self.weights.T + self.bias
        return logits

    @property
    def weights(self) -> np.ndarray:
        """Head weights ``(n_classes, n_concepts)`` over all classes (binary expanded)."""
        self._check_fitted()
        coef = self.head.coef_
        if coef.shape[0] == 1 and len(self.head.classes_) == 2:
            coef = np.vstack([-coef / 2, coef / 2])
        return self._expand(coef, axis_len=coef.shape[1])

    @property
    def bias(self) -> np.ndarray:
        b = np.asarray(self.head.intercept_, np.float64)
        if b.shape[0] == 1 and len(self.head.classes_) == 2:
            b = np.array([-b[0] / 2, b[0] / 2])
        return self._expand(b[:, None], axis_len=1)[:, 0]

    def _expand(self, rows: np.ndarray, axis_len: int) -> np.ndarray:
        """Place per-fitted-class rows into all classes (unseen classes get -inf bias)."""
        classes = np.asarray(self.head.classes_, dtype=int)
        if classes.size == len(self.class_names):
            return rows
        full = np.zeros((len(self.class_names), axis_len))
        if axis_len == 1:
            full[:] = -np.inf
        full[classes] = rows
        return full

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        return self.proba_from_scores(self.concept_scores(embeddings))

    def proba_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return softmax(self.logits_from_scores(scores), axis=1)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Class indices ``(n,)``."""
        return self.predict_proba(embeddings).argmax(axis=1)

    def contributions(
        self, embeddings: np.ndarray, classes: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-concept contribution (score x weight) to a class logit, ``(n, n_concepts)``.

        ``classes`` defaults to each image's predicted class. The contributions plus
        the class bias sum to the class logit.
        """
        scores = self.concept_scores(embeddings)
        if classes is None:
            classes = self.proba_from_scores(scores).argmax(axis=1)
        classes = np.asarray(classes, dtype=int)
        return scores * self.weights[classes]

    def explain(self, embeddings: np.ndarray, top: int = 5) -> list[Explanation]:
        """The top contributing concepts of each image's prediction."""
        scores = self.concept_scores(embeddings)
        proba = self.proba_from_scores(scores)
        pred = proba.argmax(axis=1)
        contrib = scores * self.weights[pred]
        out = []
        for i in range(scores.shape[0]):
            ranked = np.argsort(-np.abs(contrib[i]))[:top]
            order = [int(j) for j in ranked if contrib[i, j] != 0]
            out.append(
                Explanation(
                    predicted=self.class_names[pred[i]],
                    probability=float(proba[i, pred[i]]),
                    concepts=[
                        (self.bank.concepts[j], float(scores[i, j]), float(contrib[i, j]))
                        for j in order
                    ],
                )
            )
        return out

    @property
    def nec(self) -> float:
        """Non-zero head weights per class."""
        return nec(self.weights)

    def concepts_per_class(self) -> dict[str, list[tuple[str, float]]]:
        """Each class's concepts with non-zero weight, strongest first."""
        w = self.weights
        out = {}
        for k, name in enumerate(self.class_names):
            idx = np.flatnonzero(w[k])
            idx = idx[np.argsort(-np.abs(w[k, idx]))]
            out[name] = [(self.bank.concepts[j], float(w[k, j])) for j in idx]
        return out

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (atomically, file by file)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = self.head.get_params()
        config = {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "cbm_version": cbm.__version__,
            "backbone": self.backbone,
            "class_names": list(self.class_names),
            "concept_bank": self.bank.to_dict(),
            "head": {
                "type": "SparseLinearHead",
                "params": params,
                "C_": float(self.head.C_),
                "classes": [int(c) for c in self.head.classes_],
            },
            "nec": self.nec,
            "metrics": self.metrics,
            "training": self.training,
        }
        arrays = {
            "concept_embeddings": self.concept_embeddings,
            "scorer_mean": self.scorer.mean_,
            "scorer_scale": self.scorer.scale_,
            "head_coef": self.head.coef_,
            "head_intercept": self.head.intercept_,
        }
        # --- the head's regularisation path (NEC, accuracy per lambda; the app plots it) ---
        path_record = head_path_record(self.head)
        if path_record is not None:
            config["head"] = {**cast(dict[str, Any], config["head"]), "path": path_record}
        # --- SAE scorer (cbm.scores.sae): its SAE travels in the same two files ---
        if isinstance(self.scorer, SAEConceptScorer):
            config["scorer"], sae_arrays = self.scorer.state()
            arrays.update(sae_arrays)
        config["arrays_sha256"] = write_arrays(directory / "model.safetensors", arrays)
        # config.json last, carrying the arrays' hash: a crash between the two writes
        # leaves either no model or one whose parts do not match, refused on load.
        write_json(directory / "config.json", config)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ConceptBottleneckModel:
        """Load a saved model directory; nothing is unpickled.

        Anything wrong with the directory raises :class:`~cbm.exceptions.ArtefactError`
        naming the file (fuzzed in ``tests/fuzz``).
        """
        with reading_artefact(Path(directory) / "config.json"):
            return cls._load(Path(directory))

    @classmethod
    def _load(cls, directory: Path) -> ConceptBottleneckModel:
        cfg_path = directory / "config.json"
        config = check_config(read_json(cfg_path), KIND, cfg_path)
        try:
            bank = ConceptBank.from_dict(config["concept_bank"], source=str(cfg_path))
            class_names = tuple(config["class_names"])
            head_cfg = config["head"]
            backbone = dict(config["backbone"])
        except (KeyError, TypeError) as err:
            raise ArtefactError(f"{cfg_path}: missing or malformed field {err}") from err
        path = directory / "model.safetensors"
        check_sha256(path, config.get("arrays_sha256"))
        arrays = read_arrays(path)
        k = len(bank)
        dim = arrays.get("concept_embeddings", np.empty((0, 0))).shape[-1]
        classes = np.asarray(head_cfg.get("classes", range(len(class_names))), dtype=int)
        if (
            classes.ndim != 1
            or classes.size < 2
            or np.unique(classes).size != classes.size
            or classes.min() < 0
            or classes.max() >= len(class_names)
        ):
            raise ArtefactError(
                f"{cfg_path}: head classes {classes.tolist()} must be two or more distinct "
                f"indices into the {len(class_names)} class names"
            )
        n_rows = 1 if classes.size == 2 else classes.size
        emb = expect_array(arrays, "concept_embeddings", (k, dim), path)
        model = cls(
            bank, emb, backbone, class_names, SparseLinearHead(**head_cfg.get("params", {}))
        )
        cosine = cast(CosineConceptScorer, model.scorer)
        cosine.directions_ = cosine._directions()
        cosine.n_features_in_ = dim
        cosine.mean_ = expect_array(arrays, "scorer_mean", (k,), path).astype(np.float64)
        cosine.scale_ = expect_array(arrays, "scorer_scale", (k,), path).astype(np.float64)
        # --- SAE scorer (cbm.scores.sae) ---
        scorer_cfg = config.get("scorer")
        if scorer_cfg is not None:
            if not isinstance(scorer_cfg, dict) or scorer_cfg.get("type") != "SAEConceptScorer":
                raise ArtefactError(f"{cfg_path}: unknown concept scorer {scorer_cfg!r}")
            model.scorer = SAEConceptScorer.from_state(
                scorer_cfg, arrays, path, cosine.mean_, cosine.scale_, bank.concepts
            )
        model.head.coef_ = expect_array(arrays, "head_coef", (n_rows, k), path).astype(np.float64)
        model.head.intercept_ = expect_array(arrays, "head_intercept", (n_rows,), path).astype(
            np.float64
        )
        model.head.classes_ = classes
        model.head.n_features_in_ = k
        model.head.C_ = float(head_cfg.get("C_", model.head.C))
        model.head.nec_ = nec(model.head.coef_)
        # Models saved before the path was recorded load without ``path_``.
        if "path" in head_cfg:
            try:
                model.head.path_ = {
                    str(name): np.array([np.nan if v is None else v for v in values], dtype=float)
                    for name, values in dict(head_cfg["path"]).items()
                }
            except (TypeError, ValueError) as err:
                raise ArtefactError(
                    f"{cfg_path}: head.path must map names to lists of numbers ({err})"
                ) from err
        model.metrics = dict(config.get("metrics") or {})
        model.training = dict(config.get("training") or {})
        return model


def head_path_record(head: Any) -> dict[str, list[float | None]] | None:
    """The head's ``path_`` (one value per solved lambda) as JSON lists, NaN as null.

    ``None`` when the head kept no path (e.g. a model loaded from an older save).
    """
    path = getattr(head, "path_", None)
    if not isinstance(path, dict):
        return None
    return {
        str(name): [None if not np.isfinite(v) else float(v) for v in np.asarray(values, float)]
        for name, values in path.items()
    }
