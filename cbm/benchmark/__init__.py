"""``cbm benchmark``: datasets x backbones x NEC x concept banks, with controls and the
published numbers beside ours, written as CSV and Markdown (docs/benchmark.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cbm.benchmark.grid import Cell, plan, run_grid
from cbm.benchmark.prepare import BenchmarkConfig
from cbm.benchmark.published import PublishedResult, published_results
from cbm.benchmark.report import write_csv, write_markdown


def run_benchmark(
    cfg: BenchmarkConfig,
    out_dir: str | Path,
    on_cell: Callable[[Cell], None] | None = None,
    command: str = "",
) -> tuple[list[Cell], Path, Path]:
    """Run or resume the grid in ``out_dir``; write ``results.csv`` and ``results.md``.

    Returns the cells (failed ones included, with their reasons) and the two paths.
    """
    import torch
    from threadpoolctl import threadpool_limits

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    before = torch.get_num_threads()
    try:
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        with threadpool_limits(limits=cfg.threads):
            cells = run_grid(cfg, out, on_cell)
    finally:
        torch.set_num_threads(before)
    return (
        cells,
        write_csv(out / "results.csv", cells),
        write_markdown(out / "results.md", cells, command),
    )


__all__ = [
    "BenchmarkConfig",
    "Cell",
    "PublishedResult",
    "plan",
    "published_results",
    "run_benchmark",
]
