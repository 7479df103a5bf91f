"""Samplers that make every epoch reproducible from (seed, epoch) and handle class imbalance."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

SAMPLERS = ("none", "balanced", "sqrt")


def sample_weights(labels: Sequence[int], mode: str) -> np.ndarray | None:
    """Per-row sampling weight: inverse ('balanced') or inverse-sqrt ('sqrt') class frequency."""
    if mode == "none":
        return None
    labels = np.asarray(labels)
    counts = np.bincount(labels).astype(np.float64)
    if mode == "balanced":
        per_class = 1.0 / np.maximum(counts, 1)
    elif mode == "sqrt":
        per_class = 1.0 / np.sqrt(np.maximum(counts, 1))
    else:
        raise ValueError(f"unknown sampler {mode!r}; choose from {', '.join(SAMPLERS)}")
    w = per_class[labels]
    return w / w.sum()


class EpochSampler(Sampler):
    """Yields ``(index, sample_seed)`` pairs: a shuffled (or weighted) order plus a seed for each
    sample's augmentation, both derived from ``(seed, epoch)``.

    Deriving everything from the epoch number (instead of carrying RNG state) makes runs
    identical whatever the worker count, and a resumed run identical to an uninterrupted one.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, weights: np.ndarray | None = None) -> None:
        self.n, self.seed, self.shuffle, self.weights = n, seed, shuffle, weights
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:
            order = rng.choice(self.n, size=self.n, replace=True, p=self.weights)
        elif self.shuffle:
            order = rng.permutation(self.n)
        else:
            order = np.arange(self.n)
        seeds = rng.integers(0, 2**31 - 1, size=self.n)
        return iter(zip(order.tolist(), seeds.tolist()))


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
