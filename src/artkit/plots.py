"""Training curves and confusion matrices as PNG files (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artkit.writer import save_figure


def pyplot():
    """matplotlib's pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], path: str | Path) -> None:
    """Loss (train/val) and validation accuracy/macro-F1 per epoch."""
    save_figure(curves_figure(rows), path)


def curves_figure(rows: list[dict]):
    """The figure of :func:`plot_curves`; epochs are whole numbers on its x axes (one epoch showed 0.96-1.04)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train loss")
    if any(np.isfinite(r.get("val_loss", np.nan)) for r in rows):
        ax1.plot(epochs, [r["val_loss"] for r in rows], "o-", label="val loss")
        ax2.plot(epochs, [r["val_acc"] for r in rows], "o-", label="val accuracy")
        ax2.plot(epochs, [r["val_macro_f1"] for r in rows], "o-", label="val macro-F1")
        ax2.legend()
    ax1.set_xlabel("epoch"), ax1.set_title("loss"), ax1.legend()
    ax2.set_xlabel("epoch"), ax2.set_title("validation"), ax2.set_ylim(0, 1)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    fig.tight_layout()
    return fig


def plot_confusion(cm: np.ndarray, classes: list[str], path: str | Path, normalize: bool = False) -> None:
    plt = pyplot()
    data = cm.astype(np.float64)
    if normalize:
        data = data / np.maximum(data.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    size = min(4 + 0.35 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(data, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=8 if n > 20 else 10)
    ax.set_yticks(range(n), classes, fontsize=8 if n > 20 else 10)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalize else " (counts)"))
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{data[i, j]:.2f}" if normalize else str(int(cm[i, j])),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if data[i, j] > data.max() / 2 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path)


def plot_per_class(rows: list[dict], path: str | Path, worst_first: bool = True) -> None:
    """Per-class precision, recall and F1 as horizontal bars, worst F1 at the top."""
    plt = pyplot()
    rows = sorted(rows, key=lambda r: r["f1"], reverse=not worst_first)
    names = [f"{r['class']} ({r['support']})" for r in rows]
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.28 * len(rows) + 1.2)))
    y = np.arange(len(rows))
    for k, (key, colour) in enumerate((("f1", "#2e86c1"), ("precision", "#aed6f1"), ("recall", "#f5b041"))):
        ax.barh(y + (k - 1) * 0.27, [r[key] for r in rows], height=0.27, color=colour, label=key)
    ax.set_yticks(y, names, fontsize=8 if len(rows) > 25 else 10)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (support in brackets)")
    ax.set_title("per class, worst F1 first")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def plot_feature_map(
    points: np.ndarray, labels: np.ndarray, wrong: np.ndarray, classes: list[str], path: str | Path, method: str
) -> None:
    """A 2-D map of pooled features coloured by true class; misclassified images drawn as crosses."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 6.5))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    for k, name in enumerate(classes):
        mine = labels == k
        colour = cmap(k % cmap.N)
        ax.scatter(*points[mine & ~wrong].T, s=14, color=colour, label=name if len(classes) <= 20 else None)
        ax.scatter(*points[mine & wrong].T, s=36, color=colour, marker="x", linewidths=1.4)
    ax.set_title(f"pooled features ({method}); crosses are misclassified")
    ax.set_xticks([]), ax.set_yticks([])
    if len(classes) <= 20:
        ax.legend(fontsize=7, loc="best", markerscale=1.2)
    fig.tight_layout()
    save_figure(fig, path)
