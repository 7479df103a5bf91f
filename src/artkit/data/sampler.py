"""Sample orders that make every epoch reproducible from (seed, epoch) and handle class imbalance.

numpy is imported inside the functions so that the sampler names stay cheap to read (``--help``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

SAMPLERS: dict[str, str] = {
    "none": "every row once per epoch, shuffled",
    "balanced": "rows drawn with replacement, each class equally often (inverse class frequency)",
    "sqrt": "rows drawn with replacement, classes by the square root of their size (inverse square root)",
}


def sample_weights(labels: Sequence[int], mode: str):
    """Per-row sampling probability (summing to 1), or None for plain shuffling."""
    import numpy as np

    if mode not in SAMPLERS:
        raise ValueError(f"unknown sampler {mode!r}; choose from {', '.join(SAMPLERS)}")
    if mode == "none":
        return None
    labels = np.asarray(labels)
    counts = np.maximum(np.bincount(labels).astype(np.float64), 1)
    per_class = 1.0 / counts if mode == "balanced" else 1.0 / np.sqrt(counts)
    w = per_class[labels]
    return w / w.sum()


class EpochSampler:
    """Yields ``(index, sample_seed)`` pairs: a shuffled (or weighted) order plus a seed for each
    sample's augmentation, both derived from ``(seed, epoch)``.

    Deriving everything from the epoch number (instead of carrying RNG state) makes runs
    identical whatever the worker count, and a resumed run identical to an uninterrupted one.
    It is a plain iterable with a length, which is all a DataLoader needs of a sampler.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, weights=None) -> None:
        self.n, self.seed, self.shuffle, self.weights = n, seed, shuffle, weights
        self.epoch = 0
        self.skipped = 0  # samples of the epoch's order left out at its start

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, steps: int, batch_size: int) -> None:
        """Leave out the epoch's first ``steps`` batches (done before a run resumed within the epoch); 0: none.
        The length stays the whole epoch's, so the loader's steps (and the schedule) do not change."""
        self.skipped = steps * batch_size

    def __len__(self) -> int:
        return self.n

    def epoch_order(self):
        """The epoch's (indices, augmentation seeds) as two numpy arrays."""
        import numpy as np

        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:
            order = rng.choice(self.n, size=self.n, replace=True, p=self.weights)
        elif self.shuffle:
            order = rng.permutation(self.n)
        else:
            order = np.arange(self.n)
        return order, rng.integers(0, 2**31 - 1, size=self.n)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, seeds = self.epoch_order()
        return iter(zip(order[self.skipped :].tolist(), seeds[self.skipped :].tolist()))


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
