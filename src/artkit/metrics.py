"""Classification metrics (scikit-learn), named as artkit reports them."""

from __future__ import annotations

import numpy as np


def summary_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (the competition metric: classes present in truth or prediction) and weighted-F1."""
    from sklearn.metrics import accuracy_score, f1_score

    if len(y_true) == 0:
        return {"acc": float("nan"), "macro_f1": float("nan"), "weighted_f1": float("nan")}
    return {
        "acc": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
    }


def per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> list[dict]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(len(classes)), zero_division=0)
    return [
        {"class": c, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, c in enumerate(classes)
    ]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=range(n_classes))


def most_confused(cm: np.ndarray, classes: list[str], top: int = 10) -> list[dict]:
    """Off-diagonal cells with the most errors: (true class, predicted as, count)."""
    pairs = [(int(cm[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"true": classes[i], "predicted": classes[j], "count": n} for n, i, j in pairs[:top]]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a logits matrix."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
