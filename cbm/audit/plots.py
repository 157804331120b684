"""Figures of an :class:`~cbm.audit.report.AuditReport` (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cbm.audit.report import AuditReport


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def make_figures(report: AuditReport, out_dir: str | Path, dpi: int = 90) -> dict[str, Path]:
    """Write the report's figures to ``out_dir``; returns ``{name: path}``."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def save(fig, name: str) -> None:
        path = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths[name] = path

    if report.nec_curve is not None:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for bank, part in report.nec_curve.groupby("bank", sort=False):
            ax.plot(part["nec"], part["accuracy"], marker="o", label=f"{bank} bank")
        ax.scatter(
            [report.task["nec"]],
            [report.task["accuracy"]],
            color="k",
            zorder=5,
            label="audited model",
        )
        ax.set(
            xscale="symlog",
            xlabel="NEC (non-zero weights per class)",
            ylabel="test accuracy",
            title="accuracy vs NEC: concepts vs random bank",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "accuracy_vs_nec")

    if report.reliability is not None:
        rel = report.reliability[report.reliability["count"] > 0]
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        width = float(report.reliability["upper"].iloc[0] - report.reliability["lower"].iloc[0])
        ax.bar(
            rel["lower"],
            rel["accuracy"],
            width=width,
            align="edge",
            alpha=0.7,
            edgecolor="k",
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set(
            xlabel="confidence (top-class probability)",
            ylabel="accuracy",
            title=f"reliability, ECE {report.task['ece']:.3f}",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.legend(fontsize=8, loc="upper left")
        save(fig, "reliability")

    if report.effective_concepts is not None:
        eff = report.effective_concepts
        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        ax.hist(eff, bins=np.arange(eff.max() + 2) - 0.5, edgecolor="k")
        ax.set(
            xlabel="concepts carrying 95% of the decision",
            ylabel="test images",
            title=f"effective concepts per decision (NEC {report.task['nec']:.1f})",
        )
        save(fig, "effective_concepts")

    cq = report.concept_quality
    if cq is not None and "auroc" in cq:
        fig, ax = plt.subplots(figsize=(6.0, 0.22 * len(cq) + 1.6))
        y = np.arange(len(cq))
        ax.barh(y - 0.2, cq["auroc"], height=0.4, label="AUROC")
        ax.barh(y + 0.2, cq["average_precision"], height=0.4, label="average precision")
        ax.scatter(
            cq["prevalence"],
            y + 0.2,
            marker="|",
            color="k",
            s=60,
            label="AP of a random score (prevalence)",
        )
        ax.set_yticks(y, cq["concept"], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(
            xlim=(0, 1),
            xlabel="score vs ground truth",
        )
        ax.set_title("concept quality (test split)", pad=22)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
        save(fig, "concept_quality")

    if report.information is not None:
        info = report.information
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        x = np.arange(len(info))
        ax.bar(x, info["bits"], yerr=1.96 * info["se_bits"], capsize=4, edgecolor="k")
        for xi, (bits, frac) in enumerate(zip(info["bits"], info["fraction"], strict=True)):
            ax.text(
                xi,
                bits / 2,
                f"{frac:.0%}\nof embedding",
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
        ax.set_xticks(x, info["features"], rotation=20, ha="right", fontsize=8)
        ax.set(
            ylabel="I(features; label), bits (lower bound)",
            title="label information kept (95% error bars)",
        )
        save(fig, "information")

    loc = report.localisation
    if loc is not None:
        fig, ax = plt.subplots(figsize=(6.0, 0.22 * len(loc) + 1.6))
        y = np.arange(len(loc))
        ax.barh(y - 0.2, loc["pointing_game"], height=0.4, label="pointing game")
        ax.barh(
            y + 0.2,
            loc["random_map_pointing"],
            height=0.4,
            color="grey",
            label="random maps (chance)",
        )
        ax.set_yticks(y, loc["concept"], fontsize=8)
        ax.invert_yaxis()
        ax.set(
            xlim=(0, 1),
            xlabel="share of images whose map peak is on the concept",
        )
        ax.set_title(f"localisation ({loc['grid'].iloc[0]} grid)", pad=22)
        ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        save(fig, "localisation")

    if report.example_maps is not None and report.localisation is not None:
        save(_map_figure(plt, report), "concept_maps")
    return paths


def _map_figure(plt, report: AuditReport):
    ex = report.example_maps or {}
    maps, masks = ex["maps"], ex["masks"]
    images = ex.get("images")
    names = list(report.localisation["concept"]) if report.localisation is not None else []
    n = maps.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(6.6, 2.2 * n), squeeze=False)
    for i in range(n):
        present = np.flatnonzero(masks[i].any(axis=(1, 2)))
        # the two object concepts of the image with the smallest masks: shape and colour
        obj = [j for j in present if masks[i, j].mean() < 0.5][:2] or list(present[:2])
        if images is not None:
            axes[i, 0].imshow(images[i])
        axes[i, 0].set_title("image", fontsize=8)
        for col, j in enumerate(obj[:2], start=1):
            axes[i, col].imshow(maps[i, j], cmap="magma")
            axes[i, col].contour(masks[i, j], levels=[0.5], colors="cyan", linewidths=0.8)
            axes[i, col].set_title(f"{names[j]} (mask in cyan)", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    fig.suptitle("concept activation maps", fontsize=9)
    return fig
