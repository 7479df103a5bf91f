"""Shared test helpers: tiny synthetic datasets in both layouts, and datasets with planted problems.

Test modules import from here (never from each other); fixtures that wrap these live in conftest.py.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

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


LABELS = ["Albrecht Dürer", "Albrecht Du rer", "Vincent van Gogh"]


def picture(seed: int, size: tuple[int, int] = (96, 80), gray: bool = False) -> Image.Image:
    """A smooth random picture: every seed gives a genuinely different image (its pHash differs by ~30 bits),
    and one that survives resizing and re-compression (low frequencies dominate)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    img = np.asarray(small.resize(size, Image.BICUBIC), dtype=np.float32)
    img = img + rng.normal(0, 6, img.shape)
    if gray:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def make_clean(root: Path, per_class: int = 8, n_test: int = 6, seed: int = 100) -> Path:
    """Dacon layout, nothing wrong with it: train.csv (id,img_path,artist), test.csv, distinct images."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rows, k = [], 0
    for label in LABELS:
        for _ in range(per_class):
            name = f"{k:04d}.jpg"
            size = (96 + 8 * (k % 3), 80 + 4 * (k % 4))
            picture(seed + k, size).save(root / "train" / name, quality=92)
            rows.append((f"{k:03d}", f"./train/{name}", label))
            k += 1
    pd.DataFrame(rows, columns=["id", "img_path", "artist"]).to_csv(root / "train.csv", index=False)
    test = []
    for t in range(n_test):
        tid = f"TEST_{t:05d}"
        picture(seed + 10_000 + t, (64, 56)).save(root / "test" / f"{tid}.jpg", quality=92)
        test.append((tid, f"./test/{tid}.jpg"))
    pd.DataFrame(test, columns=["id", "img_path"]).to_csv(root / "test.csv", index=False)
    return root


# planted problem -> (id, file name) it lives in; tests check each is reported under its issue name
PLANTED = {
    "truncated": ("trunc", "trunc.jpg"),
    "zero-byte": ("zero", "zero.jpg"),
    "not-an-image": ("text", "text.jpg"),
    "missing": ("gone", "gone.jpg"),
    "conflict-copy": ("conflict", "conflict.jpg"),  # byte copy of 000 under another label
    "same-copy": ("samecopy", "samecopy.jpg"),  # byte copy of 009 under the same label
    "resized": ("resized", "resized.jpg"),  # 016 at 80 % size, re-compressed at quality 70
    "gray": ("gray", "gray.jpg"),  # grayscale content stored as RGB
    "tiny": ("tiny", "tiny.jpg"),  # 20 x 18 px
    "empty-label": ("nolabel", "nolabel.jpg"),
    "dup-id": ("001", "dupid.jpg"),  # a second row with id 001, another image and another label
}
LEAKED_TRAIN_ID = "004"  # copied into the test set as TEST_LEAK


def make_planted(root: Path) -> Path:
    """The clean dataset plus one of each problem (see PLANTED)."""
    make_clean(root)
    train = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    t = root / "train"
    base = picture(5000, (120, 100))
    base.save(t / "trunc.jpg", quality=92)
    data = (t / "trunc.jpg").read_bytes()
    (t / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (t / "zero.jpg").write_bytes(b"")
    (t / "text.jpg").write_text("this is not a picture\n", encoding="utf-8")
    shutil.copyfile(t / "0000.jpg", t / "conflict.jpg")
    shutil.copyfile(t / "0009.jpg", t / "samecopy.jpg")
    src = Image.open(t / "0016.jpg")
    src.resize((int(src.width * 0.8), int(src.height * 0.8)), Image.BILINEAR).save(t / "resized.jpg", quality=70)
    picture(5001, (96, 80), gray=True).save(t / "gray.jpg", quality=92)
    picture(5002, (20, 18)).save(t / "tiny.jpg", quality=92)
    picture(5003).save(t / "nolabel.jpg", quality=92)
    picture(5004).save(t / "dupid.jpg", quality=92)
    label_of = dict(zip(train["id"], train["artist"]))
    extra = [
        ("trunc", "./train/trunc.jpg", LABELS[0]),
        ("zero", "./train/zero.jpg", LABELS[1]),
        ("text", "./train/text.jpg", LABELS[2]),
        ("gone", "./train/gone.jpg", LABELS[0]),
        ("conflict", "./train/conflict.jpg", LABELS[2] if label_of["000"] != LABELS[2] else LABELS[1]),
        ("samecopy", "./train/samecopy.jpg", label_of["009"]),
        ("resized", "./train/resized.jpg", label_of["016"]),
        ("gray", "./train/gray.jpg", LABELS[1]),
        ("tiny", "./train/tiny.jpg", LABELS[2]),
        ("nolabel", "./train/nolabel.jpg", ""),
        ("001", "./train/dupid.jpg", LABELS[2] if label_of["001"] != LABELS[2] else LABELS[1]),
    ]
    train = pd.concat([train, pd.DataFrame(extra, columns=train.columns)], ignore_index=True)
    train.to_csv(root / "train.csv", index=False)
    leak_src = train.loc[train["id"] == LEAKED_TRAIN_ID, "img_path"].iloc[0]
    shutil.copyfile(root / leak_src, root / "test" / "TEST_LEAK.jpg")
    test = pd.read_csv(root / "test.csv", dtype=str)
    test.loc[len(test)] = ["TEST_LEAK", "./test/TEST_LEAK.jpg"]
    test.to_csv(root / "test.csv", index=False)
    return root


# a tiny random-init model and run settings: a CPU training epoch takes about a second
TINY = [
    "--model",
    "test_efficientnet",
    "--no-pretrained",
    "--img-size",
    "32",
    "--batch-size",
    "8",
    "--workers",
    "0",
    "--lr",
    "0.01",
    "--warmup-epochs",
    "0",
]


def artkit(*args, ok: bool = True):
    """Run the CLI in-process; with ``ok`` assert it exited 0."""
    from typer.testing import CliRunner

    from artkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def sha256_tree(root: Path) -> dict[str, str]:
    """File path (relative) -> sha256 of its bytes, for every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def chromium() -> str | None:
    """A headless-capable Chromium, if installed (``apt-get install chromium``); tests skip without one."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def images_loaded_in_browser(page: Path, tmp_path: Path) -> tuple[int, int]:
    """(pictures loaded, pictures on the page) of an artkit HTML page opened in headless Chromium.
    Skips the calling test when Chromium is absent."""
    import pytest

    browser = chromium()
    if not browser:
        pytest.skip("chromium is not installed (apt-get install chromium for the full run)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
    ]
    dom = subprocess.run([browser, *flags, page.resolve().as_uri()], capture_output=True, text=True, timeout=90).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, f"page did not finish loading: {dom[:500]}"
    return int(loaded.group(1)), int(total.group(1))


def random_checkpoint(
    path: Path,
    model: str = "test_efficientnet",
    classes: list[str] | None = None,
    img_size: int = 32,
    config: dict | None = None,
) -> Path:
    """An artkit checkpoint of a randomly initialised timm model, written to ``path``."""
    from artkit.engine.checkpoint import ModelMeta, make_checkpoint
    from artkit.models.factory import create_model
    from artkit.writer import save_torch

    classes = classes or ["a", "b", "c"]
    net = create_model(model, len(classes))
    meta = ModelMeta(
        model_name=model,
        classes=classes,
        img_size=img_size,
        mean=[0.5] * 3,
        std=[0.5] * 3,
        config=config if config is not None else {"aug": "none"},
    )
    save_torch(make_checkpoint(meta, net.state_dict(), {}, 1), path)
    return path


class FakeClock:
    """A clock that moves only when a test says so (``advance``): budgets and intervals without waiting."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
