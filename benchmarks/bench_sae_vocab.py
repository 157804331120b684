"""Naming shapes-world SAE latents with three vocabularies: which names the concepts?

Trains the shapes-world SAE recipe (``cbm.sae_pipeline.shapes_sae``) on tiny-CLIP
embeddings once, then names its latents (Discover-then-Name: closest vocabulary texts
to each decoder direction, ``cbm.concepts.naming.name_with_backbone``) with

* the shipped English word list (``cbm/concepts/vocabularies/english_words.txt``),
* the SpLiCE 37k LAION-caption vocabulary, read at run time from
  ``../shared/reference/splice/laion_vocab.txt`` (skipped when absent; never copied),
* the shapes concept bank itself (20 prompts: the upper bound a hand-written bank gives).

For each: the fraction of the 20 ground-truth concepts whose best latent (highest
activation AUROC on the test split) carries a matching name (``name_matches``, the
measure in docs/sae.md), the same restricted to recovered concepts (AUROC >= 0.9),
weak-match flags (best cosine < 0.3) among those 20 latents and among all latents, and
naming time (embedding the vocabulary's texts, then the cosine top-3).

Run: PYTHONPATH=. python benchmarks/bench_sae_vocab.py [--n-train 3000 --n-test 1500]
Set CBM_REFERENCE_DIR to point at another copy of the reference folder.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from cbm.backbones import EmbeddingCache, OpenCLIPBackbone, embed_images
from cbm.concepts.bank import ConceptBank
from cbm.concepts.naming import Vocabulary, name_by_text
from cbm.data.shapes import CONCEPTS, ShapesWorld
from cbm.sae_pipeline import concept_recovery, shapes_sae

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    vocabulary: str
    named: float
    recovered: float
    recovered_named: float
    weak_best: int
    weak_all: int
    cosine: float
    n_latents: int
    embed_s: float
    name_s: float
    misnamed: list[str]


def reference_dir() -> Path:
    env = os.environ.get("CBM_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared" / "reference", Path("/work/shared/reference")]
    return next((p for p in candidates if p.is_dir()), candidates[0])


def vocabularies() -> list[tuple[Vocabulary, bool]]:
    """(vocabulary, is the concept bank) for every vocabulary available here."""
    out = [(Vocabulary.shipped(), False)]
    splice = reference_dir() / "splice" / "laion_vocab.txt"
    if splice.is_file():
        out.append((Vocabulary.load(splice), False))
    else:
        print(f"SpLiCE vocabulary not found at {splice}: skipped")
    out.append((Vocabulary.from_bank(ConceptBank.load("shapes")), True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=3000)
    ap.add_argument("--n-test", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    world = ShapesWorld(seed=args.seed)
    train, test = world.sample(args.n_train, "train"), world.sample(args.n_test, "test")
    backbone = OpenCLIPBackbone(device="cpu")
    cache = EmbeddingCache()
    emb_train = embed_images(backbone, train.images, cache)
    emb_test = embed_images(backbone, test.images, cache)
    rows: list[Row] = []
    with threadpool_limits(limits=1):
        sae = shapes_sae(seed=args.seed, device="cpu").fit(emb_train)
        codes = sae.transform(emb_test)
        decoder = sae.decoder_directions_
        for vocab, is_bank in vocabularies():
            t0 = time.perf_counter()
            texts = backbone.encode_texts(list(vocab.prompts))
            t_embed = time.perf_counter() - t0
            t0 = time.perf_counter()
            names = name_by_text(decoder, texts, vocab)
            t_name = time.perf_counter() - t0
            rep = concept_recovery(test.concepts, codes, CONCEPTS, names, bank_vocabulary=is_bank)
            pos = {int(j): i for i, j in enumerate(names.latents)}
            best_rows = [pos[j] for j in rep.best_latent]
            weak_best = int(names.weak[best_rows].sum())
            rows.append(
                Row(
                    vocabulary=f"{vocab.name} ({len(vocab.entries):,})",
                    named=float(np.mean(rep.name_match)),
                    recovered=rep.recovered_fraction,
                    recovered_named=rep.recovered_and_named_fraction,
                    weak_best=weak_best,
                    weak_all=int(names.weak.sum()),
                    cosine=float(np.median(names.scores[best_rows, 0])),
                    n_latents=len(names.latents),
                    embed_s=t_embed,
                    name_s=t_name,
                    misnamed=[
                        f"{c} -> {'/'.join(n)}"
                        for c, n, m in zip(rep.concepts, rep.names, rep.name_match, strict=True)
                        if not m
                    ],
                )
            )
    rep_sae = sae.report_
    print(
        f"shapes world seed {args.seed}, {args.n_train} train / {args.n_test} test, tiny CLIP "
        f"shapes-clip-rn; SAE ReLU+L1, {decoder.shape[0]} latents, R2 "
        f"{rep_sae['r2']:.3f}, mean L0 {rep_sae['mean_l0']:.1f}; wall-clock seconds, "
        "one thread"
    )
    print(
        "| vocabulary | best latent's name matches (of 20) | recovered (AUROC >= 0.9) and "
        "named | weak flags: 20 best latents / all | median best cosine | embed texts (s) | "
        "name (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.vocabulary} | {round(r.named * 20)} / 20 = {r.named:.0%} | "
            f"{round(r.recovered_named * 20)} / {round(r.recovered * 20)} recovered | "
            f"{r.weak_best} / {r.weak_all} of {r.n_latents} | {r.cosine:.2f} | {r.embed_s:.1f} | "
            f"{r.name_s:.3f} |"
        )
    for r in rows:
        print(f"{r.vocabulary} misnamed (top-3): {'; '.join(r.misnamed) or 'none'}")


if __name__ == "__main__":
    main()
