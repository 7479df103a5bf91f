"""Shared fixtures: tiny synthetic datasets in both layouts, made fresh in tmp folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network; pretrained loads fail fast

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLASSES = ["Albrecht Dürer", "Albrecht Du rer", "Vincent van Gogh"]


def painting(rng: np.random.Generator, cls: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A small image whose class is easy to learn: a dominant colour per class plus noise."""
    w, h = size
    base = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]][cls % 3], dtype=np.float32)
    arr = base + rng.normal(0, 30, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_dacon(root: Path, per_class: tuple[int, ...] = (8, 6, 10), n_test: int = 7, seed: int = 0) -> Path:
    """Dacon layout: train.csv (id,img_path,artist), test.csv (id,img_path), sample_submission.csv."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rows = []
    for cls, n in enumerate(per_class):
        for _ in range(n):
            name = f"{len(rows):04d}.jpg"
            painting(rng, cls).save(root / "train" / name)
            rows.append((str(len(rows)), f"./train/{name}", CLASSES[cls]))
    pd.DataFrame(rows, columns=["id", "img_path", "artist"]).to_csv(root / "train.csv", index=False)
    test = []
    for i in range(n_test):
        tid = f"TEST_{i:05d}"
        painting(rng, i % 3, (24, 20)).save(root / "test" / f"{tid}.jpg")
        test.append((tid, f"./test/{tid}.jpg"))
    # a test order that is not sorted, so a sorted output would be caught
    test = [test[i] for i in rng.permutation(len(test))]
    pd.DataFrame(test, columns=["id", "img_path"]).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id": [t[0] for t in test], "artist": CLASSES[0]}).to_csv(root / "sample_submission.csv", index=False)
    return root


def make_folders(root: Path, per_class: int = 5, with_test: bool = True, seed: int = 1) -> Path:
    """Folder layout: root/train/<class>/*.jpg and root/test/*.jpg."""
    rng = np.random.default_rng(seed)
    for cls, name in enumerate(["cat", "dog"]):
        d = root / "train" / name
        d.mkdir(parents=True)
        for i in range(per_class):
            painting(rng, cls).save(d / f"{name}_{i}.png")
    if with_test:
        (root / "test").mkdir()
        for i in range(4):
            painting(rng, i % 2).save(root / "test" / f"t{i}.jpg")
    return root


@pytest.fixture
def dacon(tmp_path: Path) -> Path:
    return make_dacon(tmp_path / "data")


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "folders")


def pytest_collection_modifyitems(config, items):
    import torch

    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_real = pytest.mark.skip(reason=f"real data not found at {REAL_DATA}")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "realdata" in item.keywords and not REAL_DATA.is_dir():
            item.add_marker(skip_real)
