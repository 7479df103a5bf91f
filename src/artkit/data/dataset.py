"""The torch Dataset over a table of images."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from artkit.data.decode_cache import DecodeCache
from artkit.data.images import load_image
from artkit.data.transforms import split_fixed, view_key
from artkit.errors import ImageLoadError


class ImageTable(Dataset):
    """Images from ``paths`` with optional integer ``targets``.

    Indexing with ``(i, seed)`` (what :class:`EpochSampler` yields) reseeds the augmentation so
    each sample's augmentation is fixed by the run's seed and epoch, not by worker scheduling.
    With ``skip_bad`` an unreadable image is replaced by the next readable one instead of
    stopping the run; the replaced paths are listed in ``bad_paths`` (of this process). With a ``cache`` each
    image is decoded once, and augmentation starts from the cached array; when the pipeline starts with fixed
    operations (:func:`artkit.data.transforms.split_fixed`: a resize, a centre crop), the cache keeps their output
    instead, so a later pass neither decodes nor resizes, and only the random operations run each epoch.
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: Sequence[int] | None,
        transform,
        decode_size: int | None = None,
        skip_bad: bool = False,
        bad_hint: str | None = None,
        cache: DecodeCache | None = None,
    ) -> None:
        self.paths = list(paths)
        self.targets = None if targets is None else np.asarray(targets, dtype=np.int64)
        self.decode_size = decode_size
        self.skip_bad = skip_bad
        self.bad_hint = bad_hint  # what the user can do about an unreadable image here (train: --skip-bad)
        self.bad_paths: set[str] = set()
        self.cache = cache
        self.cache_entries: dict = {}  # each loader process's own: its files are stamped once
        # what the cache keeps (the fixed part's output, named by view; without one the decoded image) and what runs
        # on it each time (None: nothing but the conversion to a tensor)
        self.fixed, self.rest = split_fixed(transform) if cache is not None else (None, transform)
        self.view = view_key(self.fixed) if self.fixed is not None else ""

    def decode(self, path: str) -> np.ndarray:
        if self.cache is not None:
            return self.cache.decode(path, self.decode_size, self.cache_entries)
        return np.asarray(load_image(path, self.decode_size))

    def _read(self, path: str) -> np.ndarray:
        """What :attr:`rest` starts from: the decoded image; or, with a cache and a fixed part, its output, made on a
        miss by decoding and transforming."""
        if not self.view:
            return self.decode(path)

        def make() -> np.ndarray:
            return self.fixed(image=np.asarray(load_image(path, self.decode_size)))["image"]

        return self.cache.fetch(path, self.decode_size, self.view, make, self.cache_entries)

    def __len__(self) -> int:
        return len(self.paths)

    def _load(self, i: int) -> tuple[int, np.ndarray]:
        for step in range(len(self.paths)):
            j = (i + step) % len(self.paths)
            try:
                return j, self._read(self.paths[j])
            except ImageLoadError as exc:
                if not self.skip_bad:
                    raise ImageLoadError(exc.message, self.bad_hint or exc.hint, exc.path) from None
                self.bad_paths.add(self.paths[j])
        raise ImageLoadError("no readable image left in the dataset", "check the image folder")

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        i, seed = key if isinstance(key, tuple) else (key, None)
        j, image = self._load(i)
        if self.rest is None:
            tensor = torch.from_numpy(np.array(image))  # the view itself; a copy of its own, not the memory map
        else:
            if seed is not None:
                reseed(self.rest, seed)
            tensor = self.rest(image=image)["image"]
        return tensor, (int(self.targets[j]) if self.targets is not None else -1)


def reseed(transform, seed: int) -> None:
    """Fix an albumentations pipeline's random draws for one sample: one stream, seeded by ``seed``, that its
    operations draw from in turn. (Its own ``set_random_seed`` gives each operation a stream of its own from the
    same seed, so every operation drew the same numbers: two with the same probability were applied together or
    not at all. It also cost 4x the time.)"""
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def data_loader(
    dataset: Dataset, workers: int, pin_memory: bool, epochs: bool = True, **batching
) -> torch.utils.data.DataLoader:
    """The DataLoader of every command: ``workers`` processes, kept between passes when there are ``epochs``;
    ``batching`` is DataLoader's batch_size, sampler, batch_sampler and drop_last. OpenCV keeps its own thread
    pool in each worker: one thread per worker trained 0.91-0.97x as fast (bench/results/worker_threads.csv)."""
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset, num_workers=workers, pin_memory=pin_memory, persistent_workers=epochs and workers > 0, **batching
    )
