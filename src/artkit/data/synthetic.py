"""A built-in synthetic dataset: "paintings" by a handful of "artists" with distinct styles.

Laid out like Dacon's painter competition: ``train.csv`` (id,img_path,artist), ``test.csv``
(id,img_path) whose images are quarter crops at half resolution of held-out paintings,
``sample_submission.csv``, plus ``test_labels.csv`` so the demo can score itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from artkit.writer import save_image, write_csv

Painter = Callable[[np.random.Generator, int, int], Image.Image]


def _palette(rng: np.random.Generator, base: tuple[int, int, int], spread: int = 40) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in base)


def _stripes(rng, w, h):
    img = Image.new("RGB", (w, h), _palette(rng, (230, 200, 120)))
    d = ImageDraw.Draw(img)
    y = 0
    while y < h:
        band = int(rng.integers(4, 14))
        d.rectangle([0, y, w, y + band], fill=_palette(rng, (200, 90, 40), 50))
        y += band + int(rng.integers(3, 12))
    return img


def _dots(rng, w, h):
    img = Image.new("RGB", (w, h), _palette(rng, (40, 70, 60), 20))
    d = ImageDraw.Draw(img)
    for _ in range(w * h // 120):
        x, y, r = rng.integers(0, w), rng.integers(0, h), int(rng.integers(2, 6))
        d.ellipse([x - r, y - r, x + r, y + r], fill=_palette(rng, (240, 220, 90), 60))
    return img


def _grid(rng, w, h):
    img = Image.new("RGB", (w, h), (245, 242, 230))
    d = ImageDraw.Draw(img)
    colours = [(200, 30, 30), (30, 50, 170), (240, 200, 20), (245, 242, 230), (245, 242, 230)]
    xs = sorted(set([0, w] + rng.integers(0, w, 5).tolist()))
    ys = sorted(set([0, h] + rng.integers(0, h, 5).tolist()))
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            d.rectangle(
                [x0, y0, x1, y1], fill=colours[int(rng.integers(0, len(colours)))], outline=(10, 10, 10), width=4
            )
    return img


def _waves(rng, w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f, phase = rng.uniform(0.15, 0.3), rng.uniform(0, 6.28)
    v = 0.5 + 0.5 * np.sin(xx * f * 0.5 + np.sin(yy * f) * 3 + phase)
    rgb = np.stack([40 + 60 * v, 90 + 80 * v, 160 + 90 * v], axis=-1)
    rgb += rng.normal(0, 8, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _hatching(rng, w, h):
    # an engraver's cross-hatching, in grayscale like Dürer's prints
    img = Image.new("L", (w, h), int(rng.integers(200, 235)))
    d = ImageDraw.Draw(img)
    for _ in range(w * h // 300):
        x, y, length = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(6, 16))
        tone = int(rng.integers(20, 90))
        d.line([x, y, x + length, y + length], fill=tone, width=1)
        d.line([x + length, y, x, y + length], fill=tone, width=1)
    return img


# name -> (painter, training paintings): imbalanced like real competitions; one unicode name
DEMO_ARTISTS: dict[str, tuple[Painter, int]] = {
    "Stripe Master": (_stripes, 40),
    "Dot Impressionist": (_dots, 30),
    "Grid Modernist": (_grid, 22),
    "Wave Painter": (_waves, 15),
    "Albrecht Dürer": (_hatching, 10),
}
TEST_PER_ARTIST = 6


def make_demo_dataset(out: str | Path, seed: int = 0) -> Path:
    """Write the demo dataset to ``out`` (created) and return its path."""
    out = Path(out)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_rows: list[tuple[str, str, str]] = []
    test_items: list[tuple[Image.Image, str]] = []
    for artist, (paint, n_train) in DEMO_ARTISTS.items():
        for k in range(n_train + TEST_PER_ARTIST):
            w, h = int(rng.integers(160, 320)), int(rng.integers(160, 320))
            img = paint(rng, w, h)
            if k < n_train:
                name = f"{len(train_rows):04d}.jpg"
                save_image(img, out / "train" / name, "JPEG", quality=90)
                train_rows.append((str(len(train_rows)), f"./train/{name}", artist))
            else:
                # a quarter of the painting (half of each side) at half resolution
                left, top = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
                crop = img.crop((left, top, left + w // 2, top + h // 2)).resize((w // 4, h // 4), Image.BILINEAR)
                test_items.append((crop, artist))
    test_rows = []
    for i, j in enumerate(rng.permutation(len(test_items))):  # artists shuffled across test ids
        crop, artist = test_items[j]
        tid = f"TEST_{i:05d}"
        save_image(crop, out / "test" / f"{tid}.jpg", "JPEG", quality=90)
        test_rows.append((tid, f"./test/{tid}.jpg", artist))
    write_csv(out / "train.csv", pd.DataFrame(train_rows, columns=["id", "img_path", "artist"]))
    test = pd.DataFrame(test_rows, columns=["id", "img_path", "artist"])
    write_csv(out / "test.csv", test[["id", "img_path"]])
    write_csv(out / "test_labels.csv", test[["id", "artist"]])
    sample = test[["id"]].copy()
    sample["artist"] = next(iter(DEMO_ARTISTS))
    write_csv(out / "sample_submission.csv", sample)
    return out
