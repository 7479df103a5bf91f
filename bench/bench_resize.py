"""Shrinking images to the model's size: the antialiased bilinear resize of artkit's random crops against
OpenCV's INTER_AREA (what they used before), same images, same run.

python bench/bench_resize.py ../shared/data/dacon-sample/train --stage train
python bench/bench_resize.py ../shared/data/paintings50/train --stage train --img-size 128 --limit 300
python bench/bench_resize.py ../shared/data/dacon-sample/test --stage predict

``train``: each image decoded as the crop preset decodes it for training, then the preset's random crops (the
same crops for both) resized to ``--img-size``. ``predict``: each image decoded as predict decodes it, then resized
whole: predict and the validation views keep INTER_AREA (their output is cached, and the antialiased filters scored
lower there), so this row says what that costs. Images that are only enlarged take OpenCV's bilinear either way,
so only those that shrink are timed. Appends one row to ``--results`` (default bench/results/resize.csv):
milliseconds an image for each, the speed-up, and how far apart the two outputs are (mean and largest absolute
difference, in grey levels).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from results import append_row, invocation

from artkit.data.album_ops import resize_image
from artkit.data.images import load_image
from artkit.data.transforms import decode_size


def crops_of(image: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """``count`` crops as the crop preset draws them (15-40 % of the area, aspect 0.6-1.67)."""
    import albumentations as A
    from albumentations.augmentations.crops import functional as fcrops

    from artkit.data.dataset import reseed

    rrc = A.RandomResizedCrop(size=(8, 8), scale=(0.15, 0.4), ratio=(0.6, 1.67))
    pipeline = A.Compose([rrc])
    out = []
    for i in range(count):
        reseed(pipeline, seed + i)
        coords = rrc.get_params_dependent_on_data(params={"shape": image.shape}, data={"image": image})["crop_coords"]
        out.append(fcrops.crop(image, *coords))
    return out


def timed(resize, images: list[np.ndarray], size: int, repeat: int) -> tuple[float, list[np.ndarray]]:
    best, outs = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        outs = [resize(image, size) for image in images]
        best = min(best, time.perf_counter() - start)
    return best / len(images) * 1e3, outs


def area(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def antialiased(image: np.ndarray, size: int) -> np.ndarray:
    return resize_image(image, (size, size))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--stage", choices=["predict", "train"], default="predict")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--crops", type=int, default=8, help="random crops of each image (train)")
    ap.add_argument("--limit", type=int, default=None, help="the first N images by name (default: all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "resize.csv")
    args = ap.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.limit]
    decode = decode_size("crop", args.img_size, args.stage)
    decoded = [np.asarray(load_image(p, decode)) for p in files]
    if args.stage == "train":
        images = [c for i, image in enumerate(decoded) for c in crops_of(image, args.crops, 1000 * i)]
    else:
        images = decoded
    images = [np.ascontiguousarray(i) for i in images if i.shape[0] > args.img_size or i.shape[1] > args.img_size]
    if not images:
        raise SystemExit(f"no image of {args.folder} shrinks to {args.img_size} px")
    old_ms, old = timed(area, images, args.img_size, args.repeat)
    new_ms, new = timed(antialiased, images, args.img_size, args.repeat)
    diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(old, new)]
    mean, largest = float(np.mean([d.mean() for d in diffs])), int(max(d.max() for d in diffs))
    sides = sorted(max(i.shape[:2]) for i in images)
    what = f"{args.stage}, {sides[0]}-{sides[-1]} px on the longer side"
    print(f"{len(images)} images that shrink ({what}) to {args.img_size} px")
    print(f"  OpenCV INTER_AREA:      {old_ms:6.2f} ms an image (reference)")
    print(f"  antialiased bilinear:   {new_ms:6.2f} ms an image ({old_ms / new_ms:.2f}x as fast)")
    print(f"  apart by {mean:.2f} grey levels on average, {largest} at most")
    append_row(
        args.results,
        invocation(),
        folder=f"{args.folder.parent.name}/{args.folder.name}",
        stage=args.stage,
        images=len(images),
        img_size=args.img_size,
        area_ms=f"{old_ms:.3f}",
        antialiased_ms=f"{new_ms:.3f}",
        speedup_x=f"{old_ms / new_ms:.2f}",
        mean_abs_diff=f"{mean:.2f}",
        max_abs_diff=largest,
    )


if __name__ == "__main__":
    main()
