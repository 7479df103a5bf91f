"""Data-aware choices: what ``--aug auto`` and ``--sampler auto`` pick for a dataset, and why.

Both read cheap facts only (image headers of a sample, class counts), so they cost well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SIZE_SAMPLE = 200  # images whose headers are read per set
CROP_AREA_RATIO = 0.5  # test images with less than half the training images' median area are crops
IMBALANCE_RATIO = 3.0  # largest / smallest class count from which the square-root sampler is used


@dataclass(frozen=True, kw_only=True)
class Choice:
    value: str
    reason: str


def median_size(paths: Sequence[str], sample: int = SIZE_SAMPLE) -> tuple[float, float] | None:
    """Median (width, height) of up to ``sample`` evenly spaced images, from their headers; None if none read."""
    import numpy as np
    from PIL import Image

    from artkit.errors import ArtkitError
    from artkit.reader import open_input

    step = max(1, len(paths) // sample)
    sizes = []
    for path in list(paths)[::step][:sample]:
        try:
            with open_input(path, "image") as fh, Image.open(fh) as img:
                sizes.append(img.size)
        except (OSError, ValueError, Image.DecompressionBombError, ArtkitError):
            continue
    if not sizes:
        return None
    w, h = np.median(np.array(sizes, dtype=np.float64), axis=0)
    return float(w), float(h)


def choose_aug(
    train_paths: Sequence[str],
    test_paths: Sequence[str] | None,
    medians: tuple[tuple[float, float] | None, tuple[float, float] | None] | None = None,
) -> Choice:
    """``crop`` when the test images are much smaller than the training images (crops, as in Dacon's painter
    competition, whose test images are quarter crops at half resolution), else ``light``. ``medians``: the
    (width, height) medians of train and test when already known (eda measures every image; a run samples)."""
    if not test_paths:
        return Choice(value="light", reason="no test set found to compare with")
    train, test = medians if medians is not None else (median_size(train_paths), median_size(test_paths))
    if train is None or test is None:
        return Choice(value="light", reason="image sizes could not be read")
    ratio = (test[0] * test[1]) / max(train[0] * train[1], 1.0)
    sizes = f"median test image {test[0]:.0f}x{test[1]:.0f} px vs training {train[0]:.0f}x{train[1]:.0f} px"
    if ratio < CROP_AREA_RATIO:
        return Choice(value="crop", reason=f"test images are crops: {sizes} ({ratio:.2f} of the area)")
    return Choice(value="light", reason=f"test images look like the training images ({sizes})")


def choose_sampler(class_counts: Sequence[int]) -> Choice:
    """``sqrt`` for imbalanced classes (rare classes drawn more often, not as often as common ones), else ``none``."""
    counts = [c for c in class_counts if c > 0]
    if not counts:
        return Choice(value="none", reason="no classes")
    ratio = max(counts) / min(counts)
    if ratio >= IMBALANCE_RATIO:
        return Choice(
            value="sqrt", reason=f"classes are imbalanced ({max(counts)} to {min(counts)} rows, {ratio:.0f}x)"
        )
    return Choice(value="none", reason=f"classes are balanced enough ({ratio:.1f}x largest to smallest)")
