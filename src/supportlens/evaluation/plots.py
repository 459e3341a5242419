"""Figures logged with runs: confusion matrix and reliability diagram (matplotlib, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_png(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.2), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("model")
    ax.set_ylabel("human coder")
    top = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > top / 2 else "black",
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def reliability_png(table: list[dict[str, float]], ece: float, path: str | Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=120)
    conf = np.array([r["confidence"] for r in table])
    acc = np.array([r["accuracy"] for r in table])
    counts = np.array([r["count"] for r in table])
    centers = np.array([(r["bin_low"] + r["bin_high"]) / 2 for r in table])
    keep = counts > 0
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.bar(centers[keep], acc[keep], width=0.09, alpha=0.6, label="accuracy in bin")
    ax.plot(conf[keep], acc[keep], "o-", color="C3", label="mean confidence vs accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def curve_png(
    xs: Sequence[float], series: dict[str, Sequence[float]], path: str | Path, xlabel: str, ylabel: str, title: str
) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for name, ys in series.items():
        ax.plot(xs, ys, "o-", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
