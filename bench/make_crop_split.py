"""Deterministic stratified 80/20 split of a Dacon-layout dataset, with quarter-crop holdout images.

    python bench/make_crop_split.py DATA OUT [--seed 0] [--holdout 0.2]

Reads ``DATA/train.csv`` (id,img_path,artist) and writes

- ``OUT/train.csv``: the 80 % to train on, same columns, img_path absolute (original images);
- ``OUT/holdout_full.csv``: the held-out 20 %, uncropped (absolute paths), for reference;
- ``OUT/test.csv``: the same crops without labels, as a competition's test set;
- ``OUT/holdout_crops.csv`` + ``OUT/crops/<id>.jpg``: for every held-out painting one random crop
  of half of each side (a quarter of the area) at half resolution, so a 256x256 painting gives
  a 128x128 crop stored as 64x64, like Dacon's test images.

The split is stratified by artist (scikit-learn ``train_test_split``, ``random_state=seed``) and
the crop positions come from ``numpy.random.default_rng(seed)``: same inputs, same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def quarter_crop(path: str, rng: np.random.Generator) -> Image.Image:
    """A random crop of half of each side of the image at ``path``, stored at half resolution."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        cw, ch = max(1, w // 2), max(1, h // 2)
        left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = img.crop((left, top, left + cw, top + ch))
        return crop.resize((max(1, cw // 2), max(1, ch // 2)), Image.LANCZOS)


def write_quarter_crops(frame: pd.DataFrame, folder: Path, seed: int, quality: int = 90) -> pd.DataFrame:
    """One quarter crop of every row's image into ``folder/<id>.jpg``; returns id,img_path,artist."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for rid, path, artist in zip(frame["id"], frame["img_path"], frame["artist"]):
        dest = folder / f"{rid}.jpg"
        quarter_crop(path, rng).save(dest, quality=quality)
        rows.append({"id": rid, "img_path": str(dest), "artist": artist})
    return pd.DataFrame(rows)


def make_split(data: str | Path, out: str | Path, seed: int = 0, holdout: float = 0.2, quality: int = 90) -> dict:
    from sklearn.model_selection import train_test_split

    data, out = Path(data).resolve(), Path(out).resolve()
    frame = pd.read_csv(data / "train.csv", dtype={"id": str})
    for col in ("id", "img_path", "artist"):
        if col not in frame.columns:
            raise SystemExit(f"{data / 'train.csv'} has no '{col}' column")
    frame["img_path"] = [str(p if Path(p).is_absolute() else (data / p).resolve()) for p in frame["img_path"]]
    train, hold = train_test_split(frame, test_size=holdout, stratify=frame["artist"], random_state=seed)
    train, hold = train.sort_index(), hold.sort_index()
    out.mkdir(parents=True, exist_ok=True)
    crops_dir = out / "crops"
    crops_dir.mkdir(exist_ok=True)
    train[["id", "img_path", "artist"]].to_csv(out / "train.csv", index=False)
    hold[["id", "img_path", "artist"]].to_csv(out / "holdout_full.csv", index=False)

    crops = write_quarter_crops(hold, crops_dir, seed, quality)
    crops.to_csv(out / "holdout_crops.csv", index=False)
    # the unlabelled test set of a competition folder: what `--aug auto` and `artkit predict` see
    crops[["id", "img_path"]].to_csv(out / "test.csv", index=False)
    return {
        "train": len(train),
        "holdout": len(hold),
        "classes": frame["artist"].nunique(),
        "classes_in_holdout": hold["artist"].nunique(),
        "out": str(out),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="dataset folder with train.csv (id,img_path,artist)")
    ap.add_argument("out", help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", type=float, default=0.2)
    args = ap.parse_args(argv)
    print(make_split(args.data, args.out, args.seed, args.holdout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
