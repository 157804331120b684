"""Our concept filter on Label-free CBM's raw GPT-3 answers vs their published filtered sets.

Reads ../shared/reference/label-free-cbm (skips when absent), runs cbm's text-only filter
steps (length <= 30, class-name similarity, near-duplicates; the same steps and cut-offs
as Label-free CBM, with all-MiniLM-L6-v2 as the text encoder instead of their
CLIP+mpnet pair), and prints the overlap with the published sets, matched by
``concept_key`` (case, article, punctuation, plural):

    recall    = |ours & published| / |published|
    precision = |ours & published| / |ours|

"ceiling" is the recall of the raw answers before any filtering (published concepts
that are not in the raw answers at all cannot be recovered by any filter).

Run: HF_HUB_OFFLINE=1 python benchmarks/bench_concept_filter.py [--class-sim 0.85 --dup-sim 0.9]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "label-free-cbm"
if not REF.is_dir():
    REF = Path("/work/shared/reference/label-free-cbm")

DATASETS = {
    "cifar10": ("important", "superclass", "around"),
    "cifar100": ("important", "superclass", "around"),
    "cub": ("important",),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--class-sim", type=float, default=0.85)
    ap.add_argument("--dup-sim", type=float, default=0.9)
    ap.add_argument("--max-chars", type=int, default=30)
    args = ap.parse_args()
    if not (REF / "gpt3_raw").is_dir():
        print(f"skipped: {REF} is absent (reference data is not shipped)")
        return 0

    import torch

    torch.set_num_threads(1)
    from cbm.concepts.embed import MiniLMEmbedder
    from cbm.concepts.filters import MaxLength, NearDuplicates, TooSimilarToClass, apply_filters
    from cbm.concepts.parse import clean_concept, concept_key, dedupe

    embedder = MiniLMEmbedder()
    rows = []
    for ds, prompts in DATASETS.items():
        t0 = time.perf_counter()
        raw: dict[str, list[str]] = {}
        for p in prompts:
            for cls, items in json.loads(
                (REF / "gpt3_raw" / f"gpt3_{ds}_{p}.json").read_text()
            ).items():
                raw.setdefault(cls, []).extend(items)
        candidates = dedupe(c for items in raw.values() for c in map(clean_concept, items) if c)
        steps = [
            MaxLength(args.max_chars),
            TooSimilarToClass(list(raw), embedder, args.class_sim),
            NearDuplicates(embedder, args.dup_sim),
        ]
        kept, report = apply_filters(candidates, steps)
        published = {
            concept_key(x)
            for x in (REF / f"{ds}_filtered.txt").read_text().splitlines()
            if x.strip()
        }
        ours = {concept_key(c) for c in kept}
        raw_keys = {concept_key(c) for c in candidates}
        both = ours & published
        rows.append(
            (
                ds,
                len(candidates),
                len(kept),
                len(published),
                len(both) / len(published),
                len(both) / max(len(ours), 1),
                len(raw_keys & published) / len(published),
                [n_out for _, _, n_out in report.counts],
                time.perf_counter() - t0,
            )
        )
    print(
        f"filter: length<={args.max_chars}, class-sim<={args.class_sim}, dup-sim<={args.dup_sim} "
        f"(all-MiniLM-L6-v2); peer: Label-free CBM published sets"
    )
    print(
        f"{'dataset':<9} {'raw':>5} {'ours':>5} {'theirs':>6} {'recall':>7} {'precision':>9} "
        f"{'ceiling':>8}  after each step            seconds"
    )
    for ds, n_raw, n_ours, n_pub, rec, prec, ceil, steps_out, sec in rows:
        print(
            f"{ds:<9} {n_raw:>5} {n_ours:>5} {n_pub:>6} {rec:>7.1%} {prec:>9.1%} {ceil:>8.1%}  "
            f"{str(steps_out):<26} {sec:>6.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
