"""Deterministic stratified splits: a holdout fraction or one fold of K."""

from __future__ import annotations

import numpy as np
import pandas as pd

from artkit.errors import ArtkitError


def fold_assignments(labels: pd.Series | list[str], folds: int, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) of every row, stratified by label and fixed by ``seed``.

    Classes with fewer rows than folds still get each row into some fold (round-robin), so no
    row is lost; those classes are simply absent from some validation folds.
    """
    if folds < 2:
        raise ArtkitError(f"--folds must be at least 2 (got {folds})")
    labels = np.asarray(list(labels), dtype=object)
    if folds > len(labels):
        raise ArtkitError(
            f"--folds {folds} is more than the {len(labels)} training rows",
            f"use at most --folds {len(labels)} (5 is usual)",
        )
    rng = np.random.default_rng(seed)
    assign = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for cls in sorted(set(labels)):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        # rotating the start fold per class keeps fold sizes balanced across small classes
        assign[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return assign


def holdout_mask(labels: pd.Series | list[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: about ``val_fraction`` of each class (at least one row
    of every class with two or more rows), fixed by ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise ArtkitError(f"--val-fraction must be between 0 and 1 (got {val_fraction})")
    labels = np.asarray(list(labels), dtype=object)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for cls in sorted(set(labels)):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < 2:
            continue
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        mask[idx[rng.permutation(len(idx))[:n_val]]] = True
    return mask


def make_split(
    table: pd.DataFrame, seed: int, val_fraction: float = 0.2, folds: int | None = None, fold: int | None = None
) -> pd.DataFrame:
    """``table`` plus a ``split`` column ('train' or 'val') and, for k-fold, a ``fold`` column."""
    out = table[["id", "path", "label"]].copy()
    if folds:
        if fold is None or not 0 <= fold < folds:
            raise ArtkitError(f"--fold must be in 0..{folds - 1} (got {fold})")
        out["fold"] = fold_assignments(out["label"], folds, seed)
        out["split"] = np.where(out["fold"] == fold, "val", "train")
    else:
        out["split"] = np.where(holdout_mask(out["label"], val_fraction, seed), "val", "train")
    return out


def classes_smaller_than(labels, folds: int) -> dict[str, int]:
    """Classes with fewer rows than folds: some folds then train without them. Class -> rows."""
    counts = pd.Series(list(labels)).value_counts()
    return {str(k): int(v) for k, v in counts[counts < folds].sort_index().items()}
