"""Training curves and confusion matrices as PNG files (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artkit.io import save_figure


def pyplot():
    """matplotlib's pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], path: str | Path) -> None:
    """Loss (train/val) and validation accuracy/macro-F1 per epoch."""
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
    fig.tight_layout()
    save_figure(fig, path)


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
