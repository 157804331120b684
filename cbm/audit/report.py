"""Run every metric of :mod:`cbm.metrics` on one model and collect the results.

Sections that need ground truth (concept quality, existence, importance alignment,
localisation) are skipped, with the reason recorded, when the data has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from cbm.metrics import (
    accuracy,
    accuracy_at_nec,
    accuracy_nec_curve,
    balanced_accuracy,
    binarise,
    class_concept_frequency,
    concept_activation_maps,
    concept_auroc,
    concept_average_precision,
    concept_existence,
    concept_health,
    effective_concepts,
    expected_calibration_error,
    importance_alignment,
    information_audit,
    leakage_check,
    mask_iou,
    pointing_game,
    reliability_table,
    upsample_maps,
)
from cbm.model import ConceptBottleneckModel
from cbm.scores.cosine import CosineConceptScorer, random_directions


@dataclass
class AuditData:
    """The images an audit evaluates on, as embeddings, with optional ground truth.

    Attributes
    ----------
    train_embeddings, train_labels, test_embeddings, test_labels
        Image embeddings (from the model's backbone) and class indices.
    test_concepts
        ``(n_test, n_concepts)`` binary ground truth in the bank's order, if known.
    dense
        ``(m, h, w, dim)`` per-location embeddings of the first ``m`` test images.
    masks
        ``(m, n_concepts, H, W)`` ground-truth concept masks of the same images.
    images
        ``(m, H, W, 3)`` uint8 test images matching ``dense`` (for figures only).
    description
        Where the data came from (printed in the report).
    """

    train_embeddings: np.ndarray
    train_labels: np.ndarray
    test_embeddings: np.ndarray
    test_labels: np.ndarray
    test_concepts: np.ndarray | None = None
    dense: np.ndarray | None = None
    masks: np.ndarray | None = None
    images: np.ndarray | None = None
    description: str = ""


@dataclass
class AuditReport:
    """Everything an audit measured; DataFrames are ``None`` when a section was skipped."""

    model: dict[str, Any]
    data: str
    task: dict[str, float] = field(default_factory=dict)
    reliability: pd.DataFrame | None = None
    effective_concepts: np.ndarray | None = None
    nec_curve: pd.DataFrame | None = None
    concept_quality: pd.DataFrame | None = None
    existence: dict[int, float] | None = None
    importance: pd.DataFrame | None = None
    localisation: pd.DataFrame | None = None
    example_maps: dict[str, np.ndarray] | None = None
    information: pd.DataFrame | None = None
    leakage: pd.DataFrame | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def model_summary(model: ConceptBottleneckModel) -> dict[str, Any]:
    """What the model is: backbone, bank, NEC and each class's concepts."""
    return {
        "backbone": model.backbone.get("backbone_id", "?"),
        "concept_bank": model.bank.name,
        "n_concepts": len(model.bank),
        "n_classes": len(model.class_names),
        "nec": model.nec,
        "concepts_per_class": model.concepts_per_class(),
    }


def _random_scores(model: ConceptBottleneckModel, data: AuditData, seed: int) -> tuple:
    dirs = random_directions(len(model.bank), model.concept_embeddings.shape[1], seed=seed)
    scorer = CosineConceptScorer(dirs).fit(data.train_embeddings)
    return scorer.transform(data.train_embeddings), scorer.transform(data.test_embeddings)


def _task(model: ConceptBottleneckModel, data: AuditData, report: AuditReport) -> np.ndarray:
    scores = model.concept_scores(data.test_embeddings)
    proba = model.proba_from_scores(scores)
    pred = proba.argmax(axis=1)
    contrib = scores * model.weights[pred]
    eff = effective_concepts(contrib, mass=0.95)
    report.task = {
        "accuracy": accuracy(data.test_labels, pred),
        "balanced_accuracy": balanced_accuracy(data.test_labels, pred),
        "ece": expected_calibration_error(data.test_labels, proba, n_bins=10),
        "nec": model.nec,
        "effective_concepts_mean": float(eff.mean()),
        "effective_concepts_median": float(np.median(eff)),
    }
    report.reliability = reliability_table(data.test_labels, proba, n_bins=10)
    report.effective_concepts = eff
    return contrib


def _ground_truth(
    model: ConceptBottleneckModel, data: AuditData, contrib: np.ndarray, report: AuditReport
) -> None:
    truth = data.test_concepts
    if truth is None:
        why = "no ground-truth concepts for the evaluation images"
        for name in ("concept quality", "concept existence", "importance alignment"):
            report.skipped[name] = why
        return
    scores = model.concept_scores(data.test_embeddings)
    report.concept_quality = pd.DataFrame(
        {
            "concept": list(model.bank.concepts),
            "auroc": concept_auroc(truth, scores),
            "average_precision": concept_average_precision(truth, scores),
            "prevalence": truth.mean(axis=0),
        }
    )
    report.existence = concept_existence(contrib, scores, truth, ks=(1, 3, 5))
    freq = class_concept_frequency(truth, data.test_labels, len(model.class_names))
    report.importance = importance_alignment(model.weights, freq, model.class_names)


def _localisation(
    model: ConceptBottleneckModel, data: AuditData, report: AuditReport, seed: int
) -> None:
    if data.dense is None or data.masks is None:
        report.skipped["localisation"] = (
            "no per-location embeddings and concept masks (needs a backbone with "
            "spatial features and a dataset with masks, e.g. the shapes world)"
        )
        return
    maps = concept_activation_maps(data.dense, model.concept_embeddings)
    up = upsample_maps(maps, data.masks.shape[-2:])
    # chance level: the same game played by random maps on the same grid
    noise = np.random.default_rng(seed).random(maps.shape)
    chance = pointing_game(upsample_maps(noise, data.masks.shape[-2:]), data.masks)
    report.localisation = pd.DataFrame(
        {
            "concept": list(model.bank.concepts),
            "pointing_game": pointing_game(up, data.masks),
            "random_map_pointing": chance,
            "mask_iou": mask_iou(up, data.masks, threshold=0.5),
            "grid": f"{maps.shape[2]}x{maps.shape[3]}",
        }
    )
    report.example_maps = {"maps": up[:4], "masks": data.masks[:4]}
    if data.images is not None:
        report.example_maps["images"] = data.images[:4]


def run_audit(
    model: ConceptBottleneckModel,
    data: AuditData,
    seed: int = 0,
    top_k: tuple[int, ...] = (1, 3, 5),
    mi_Cs: tuple[float, ...] = (1e-4, 0.1, 1.0, 10.0),
    nec_Cs: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0),
) -> AuditReport:
    """Audit ``model`` on ``data``: task, concepts, localisation, information, leakage.

    Parameters
    ----------
    model
        A fitted model.
    data
        Embeddings (from the model's backbone) and whatever ground truth exists.
    seed
        Seed of the random-bank control and the cross-fitting folds.
    top_k
        Sizes of the top-concept subsets in the information audit.
    mi_Cs, nec_Cs
        Regularisation grids of the information estimator and the accuracy-NEC path.
    """
    report = AuditReport(model=model_summary(model), data=data.description)
    with threadpool_limits(limits=1):
        contrib = _task(model, data, report)
        _ground_truth(model, data, contrib, report)
        _localisation(model, data, report, seed)
        s_tr = model.concept_scores(data.train_embeddings)
        s_te = model.concept_scores(data.test_embeddings)
        r_tr, r_te = _random_scores(model, data, seed)
        ytr, yte = data.train_labels, data.test_labels
        curves = {
            name: accuracy_nec_curve(a, ytr, b, yte, Cs=nec_Cs, seed=seed)
            for name, (a, b) in {
                "soft": (s_tr, s_te),
                "binarised": (binarise(s_tr), binarise(s_te)),
                "random": (r_tr, r_te),
            }.items()
        }
        report.nec_curve = pd.concat(
            [
                curves["soft"].assign(bank=model.bank.name),
                curves["binarised"].assign(bank=f"{model.bank.name}, binarised"),
                curves["random"].assign(bank="random"),
            ],
            ignore_index=True,
        )
        report.task["random_bank_accuracy_at_nec"] = accuracy_at_nec(curves["random"], model.nec)
        report.task["l1_path_accuracy_at_nec"] = accuracy_at_nec(curves["soft"], model.nec)
        health = concept_health(s_te, names=model.bank.concepts)
        if report.concept_quality is None:
            report.concept_quality = health
        else:
            report.concept_quality = report.concept_quality.merge(health, on="concept")
        ranking = np.argsort(-np.abs(model.weights).sum(axis=0), kind="stable")
        report.information = information_audit(
            data.test_embeddings, s_te, yte, ranking=ranking, ks=top_k, seed=seed, Cs=mi_Cs
        )
        leak = leakage_check(s_tr, ytr, s_te, yte, r_tr, r_te)
        leak = leak.rename(columns={"accuracy": "dense_accuracy", "gap_to_soft": "dense_gap"})
        at_nec = np.array([accuracy_at_nec(curves[name], model.nec) for name in leak["scores"]])
        leak["accuracy_at_nec"] = at_nec
        leak["gap_at_nec"] = at_nec[0] - at_nec
        report.leakage = leak
    return report
