"""The benchmark grid: cells, how each is fitted, failures kept apart, resume from disk.

A *cell* is one (dataset, backbone, NEC, bank) accuracy. Every bank cell also fits its
random control: a bank of as many random unit directions, same head, same NEC, so the
row says what the concepts' meaning adds over any projections of the embedding.
Finished cells are written to ``<out>/cells/<key>.json`` at once; a rerun with the same
settings reads them back instead of refitting. A cell that raises is reported in the
table with its error and is tried again on the next run; the other cells still run.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from cbm.benchmark.prepare import BenchmarkConfig, prepare_setting
from cbm.benchmark.settings import Setting
from cbm.concepts.bank import ConceptBank
from cbm.concepts.naming import LatentNames
from cbm.concepts.sae import SparseAutoencoder
from cbm.heads.sparse import SparseLinearHead, nec
from cbm.io import read_json, write_json
from cbm.metrics.core import accuracy
from cbm.model import ConceptBottleneckModel
from cbm.scores.cosine import random_directions
from cbm.scores.sae import SAEConceptScorer, sae_bottleneck

HEAD_BACKBONES = ("efficientnet-lite0",)


@dataclass
class Cell:
    """One row of the result table (accuracies are fractions; NaN when not measured)."""

    dataset: str
    backbone: str
    nec_target: str
    bank: str
    status: str = "pending"
    """``ok``, ``n/a`` (not applicable, see ``reason``) or ``failed`` (see ``reason``)."""
    reason: str = ""
    bank_name: str = ""
    n_concepts: int = 0
    accuracy: float = float("nan")
    nec: float = float("nan")
    random_accuracy: float = float("nan")
    random_nec: float = float("nan")
    weights_id: str = ""
    n_train: int = 0
    n_test: int = 0
    seconds: float = 0.0
    notes: str = ""
    key: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        floats = {f.name for f in fields(cls) if f.type in ("float", float)}
        clean: dict[str, Any] = {
            k: float("nan") if k in floats and v is None else v for k, v in data.items()
        }
        return cls(**clean)


def planned_banks(cfg: BenchmarkConfig, backbone_name: str) -> list[str]:
    """Bank rows per NEC; a backbone with a classifier head also gets its class bank."""
    kinds = list(cfg.banks)
    if backbone_name in HEAD_BACKBONES and "sae" in kinds:
        kinds.insert(kinds.index("sae") + 1, "classes")
    return kinds


def _head(target: float | None, params: dict[str, Any]) -> SparseLinearHead:
    """The sparse head at ``target`` NEC; ``None``: dense (same solver, L2 only, C = 1)."""
    if target is None:
        return SparseLinearHead(target_nec=None, l1_ratio=0.0, debias=False, **params)
    return SparseLinearHead(target_nec=target, **params)


def evaluate_bank(
    s: Setting,
    bank: ConceptBank,
    vectors: np.ndarray,
    target: float | None,
    scorer: SAEConceptScorer | None = None,
) -> tuple[float, float]:
    """Test accuracy and NEC of a CBM on ``bank`` at ``target`` NEC (``None``: dense)."""
    model = ConceptBottleneckModel(
        bank, vectors, s.identity, s.classes, _head(target, s.info["head_params"]), scorer=scorer
    ).fit(s.emb_train, s.y_train)
    return accuracy(s.y_test, model.predict(s.emb_test)), model.nec


def random_bank(n: int, dim: int, seed: int) -> tuple[ConceptBank, np.ndarray]:
    """``n`` random unit directions as a bank: the random-concept control."""
    bank = ConceptBank(
        name=f"random-directions-{n}",
        concepts=tuple(f"random direction {i}" for i in range(n)),
        provenance={"source": "random unit vectors in embedding space", "seed": seed},
    )
    return bank, random_directions(n, dim, seed=seed)


def probe(s: Setting, target: float | None) -> tuple[float, float]:
    """Linear probe on the standardised raw features (sparse at a finite NEC)."""
    mu, sd = s.emb_train.mean(0), s.emb_train.std(0) + 1e-8
    head = _head(target, s.info["head_params"]).fit((s.emb_train - mu) / sd, s.y_train)
    pred = head.predict((s.emb_test - mu) / sd)
    return accuracy(s.y_test, pred), nec(head.coef_)


class SettingRunner:
    """Fits the cells of one setting, training its SAE at most once."""

    def __init__(self, s: Setting, cfg: BenchmarkConfig, sae_dir: Path) -> None:
        self.s, self.cfg, self.sae_dir = s, cfg, sae_dir
        self._sae: tuple[SparseAutoencoder, LatentNames, list[int]] | None = None

    def sae(self) -> tuple[SparseAutoencoder, LatentNames, list[int]]:
        """The fitted SAE (loaded when a previous run saved it), its names, its latents."""
        if self._sae is None:
            if (self.sae_dir / "config.json").is_file():
                sae = SparseAutoencoder.load(self.sae_dir, device=self.s.info["device"])
            else:
                sae = self.s.sae.fit(self.s.emb_train)
                sae.save(self.sae_dir)
            names = self.s.name_latents(sae)
            latents = [int(j) for j in names.latents[~names.weak]] or names.latents.tolist()
            self._sae = (sae, names, latents)
        return self._sae

    def bank_of(self, kind: str) -> tuple[ConceptBank, np.ndarray, SAEConceptScorer | None]:
        s = self.s
        if kind == "text" and s.text_bank is not None:
            return (*s.text_bank, None)
        if kind == "classes" and s.head_bank is not None:
            return (*s.head_bank, None)
        if kind == "sae":
            sae, names, latents = self.sae()
            model = sae_bottleneck(sae, names, s.identity, s.classes, latents=latents)
            return (
                model.bank,
                model.concept_embeddings,
                SAEConceptScorer(sae, latents, model.bank.concepts),
            )
        if kind == "random":
            ref = s.text_bank or s.head_bank
            n = len(ref[0]) if ref is not None else len(self.sae()[2])
            return (*random_bank(n, s.emb_train.shape[1], self.cfg.seed), None)
        raise LookupError(kind)

    def fill(self, cell: Cell) -> None:
        """Compute ``cell`` in place (status ``ok`` or ``n/a``)."""
        s = self.s
        target = None if cell.nec_target == "dense" else float(cell.nec_target)
        cell.weights_id = str(s.identity.get("weights_id", ""))
        cell.n_train, cell.n_test = s.info["n_train"], s.info["n_test"]
        skipped = s.info.get("skipped_images", 0)
        note = f"{skipped} unreadable images left out" if skipped else ""
        if s.info.get("skipped_examples"):
            note += f" (e.g. {s.info['skipped_examples'][0]})"
        if cell.bank == "probe":
            cell.accuracy, cell.nec = probe(s, target)
            cell.bank_name, cell.n_concepts = "raw features", s.emb_train.shape[1]
            cell.status, cell.notes = "ok", note
            return
        if cell.bank == "text" and s.text_bank is None:
            cell.status, cell.reason = "n/a", s.text_bank_reason
            return
        bank, vectors, scorer = self.bank_of(cell.bank)
        cell.bank_name, cell.n_concepts = bank.name, len(bank)
        cell.notes = bank_notes(bank) + (f"; {note}" if note else "")
        cell.accuracy, cell.nec = evaluate_bank(s, bank, vectors, target, scorer)
        if cell.bank != "random":  # the random bank is its own control
            rand, rvec = random_bank(len(bank), s.emb_train.shape[1], self.cfg.seed)
            cell.random_accuracy, cell.random_nec = evaluate_bank(s, rand, rvec, target)
        cell.status = "ok"


def bank_notes(bank: ConceptBank, n: int = 6) -> str:
    """Where a bank came from and its first concepts, for the table's readers."""
    prov = bank.provenance
    how = prov.get("method") or prov.get("source") or "hand-written"
    return f"{how}; e.g. {', '.join(bank.concepts[:n])}"


def plan(cfg: BenchmarkConfig, cuda: bool) -> list[tuple[tuple[str, str, str | None], list[Cell]]]:
    """Every setting with the cells it owes, in table order."""
    out = []
    for dataset, name, pre in cfg.pairs():
        key = cfg.key(dataset, name, pre, cuda)
        label = name if pre in (None, "") else f"{name} ({pre})"
        cells = [
            Cell(dataset, label, n, kind, key=f"{key}-{kind}-nec{n}")
            for n in cfg.necs
            for kind in planned_banks(cfg, name)
        ]
        out.append(((dataset, name, pre), cells))
    return out


def run_grid(
    cfg: BenchmarkConfig,
    out_dir: Path,
    on_cell: Callable[[Cell], None] | None = None,
) -> list[Cell]:
    """Run (or resume) the whole grid; returns every cell, failed ones included."""
    from cbm.backbones.base import resolve_device

    cuda = resolve_device(cfg.device).type == "cuda"
    cell_dir = out_dir / "cells"
    cells_out: list[Cell] = []
    for (dataset, name, pre), cells in plan(cfg, cuda):
        pending = []
        for cell in cells:
            path = cell_dir / f"{cell.key}.json"
            if path.is_file():
                stored = Cell.from_dict(read_json(path))
                cells_out.append(stored)
                if on_cell is not None:
                    on_cell(stored)
            else:
                pending.append(cell)
                cells_out.append(cell)
        if not pending:
            continue
        try:
            setting = prepare_setting(cfg, dataset, name, pre)
        except Exception as err:  # a missing dataset or model fails its cells, not the run
            for cell in pending:
                _failed(cell, err, on_cell)
            continue
        for cell in pending:  # the table keeps the setting's own label (weights tag etc.)
            cell.backbone = setting.backbone
        runner = SettingRunner(setting, cfg, out_dir / "sae" / pending[0].key.split("-")[0])
        for cell in pending:
            start = time.perf_counter()
            try:
                runner.fill(cell)
            except Exception as err:  # reported in the table and retried on the next run
                _failed(cell, err, on_cell)
                continue
            cell.seconds = time.perf_counter() - start
            write_json(cell_dir / f"{cell.key}.json", cell.to_dict())
            if on_cell is not None:
                on_cell(cell)
    return cells_out


def _failed(cell: Cell, err: BaseException, on_cell: Callable[[Cell], None] | None) -> None:
    cell.status = "failed"
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    cell.reason = f"{type(err).__name__}: {err}{where}"
    if on_cell is not None:
        on_cell(cell)
