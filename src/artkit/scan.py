"""Per-image facts shared by ``artkit eda`` and ``artkit clean``: readability, geometry, colour
mode, content hashes; cached on disk so a second run over thousands of images takes seconds.

What "same image" means here, and why it is cheap:

* ``file_md5`` (md5 of the file's bytes) catches byte-identical copies, the usual kind of
  duplicate (one file saved twice, under two names or two labels), without decoding anything.
* ``phash`` is a 64-bit DCT perceptual hash of a 32x32 grayscale thumbnail. Pixels are decoded
  at reduced size (Pillow's JPEG ``draft``, several times faster than a full decode), which is
  plenty for a 32x32 thumbnail. Near duplicates (resized, re-compressed) have a small Hamming
  distance between their hashes; a match is confirmed by the correlation of 16x16 thumbnails,
  because on real paintings a distance of 8 also pairs unrelated pictures with a similar layout.
* ``pixel_md5`` is the md5 of the full-resolution RGB pixels, i.e. "the same image as the
  model sees it". It comes free when an image is decoded at full size anyway (PNGs, small
  JPEGs); for the rest it is computed later, only for candidate pairs (same size and a nearly
  equal pHash) by :func:`fill_pixel_hashes`. Two files are exact duplicates when their pixel
  hashes are equal, or, where no pixel hash was needed, their bytes are.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from artkit.data.images import load_image
from artkit.errors import ArtkitError, ImageLoadError

Progress = Callable[[int, int], None]

# Bump when a fact's meaning or computation changes: old cache rows are then ignored.
SCAN_VERSION = 3
THUMB_MIN_SIDE = 32  # decode JPEGs at the smallest scale that keeps both sides >= this
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
GRAY_TOLERANCE = 10  # channel spread (0..255) under which an RGB pixel counts as gray; JPEG chroma noise is smaller
PIXEL_CHECK_DISTANCE = 4  # pHash distance under which a same-size pair is checked for identical pixels
# A pHash match is confirmed only when the 16x16 grayscale thumbnails also correlate this well: on
# real paintings, pHash distance 8 alone also pairs unrelated dark portraits or similar layouts.
NEAR_MIN_CORRELATION = 0.8
_CHUNK = 32

COLUMNS = ["path", "exists", "bytes", "readable", "error_kind", "error", "format", "mode", "width", "height",
           "stored_gray", "is_grayscale", "file_md5", "pixel_md5", "phash", "thumb16"]


@dataclass
class ScanResult:
    """One row per input path (same order, duplicates repeated), plus what the scan cost."""

    table: pd.DataFrame
    cache_hits: int = 0
    decoded: int = 0
    seconds: float = 0.0
    cache_path: Path | None = None


# ---------------------------------------------------------------- per-file work (runs in workers)

def _dct_matrix(n: int = 32) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(32)


def phash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash: the 8x8 lowest frequencies of a 32x32 grayscale thumbnail
    compared against their median."""
    small = np.asarray(img.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    low = (_DCT @ small @ _DCT.T)[:8, :8].ravel()
    bits = low > np.median(low)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _is_gray_rgb(rgb: np.ndarray) -> bool:
    a = rgb.astype(np.int16)
    spread = np.maximum(np.abs(a[..., 0] - a[..., 1]), np.abs(a[..., 1] - a[..., 2]))
    spread = np.maximum(spread, np.abs(a[..., 0] - a[..., 2]))
    # the 99th percentile tolerates a coloured signature or a few stray pixels on a gray print
    return bool(np.percentile(spread, 99) <= GRAY_TOLERANCE)


def _pixel_md5(img: Image.Image) -> str:
    h = hashlib.md5(usedforsecurity=False)
    h.update(f"{img.width}x{img.height}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def _kind(message: str) -> str:
    text = message.lower()
    if "not found" in text:
        return "missing"
    if "not an image" in text:
        return "not-an-image"
    if "truncated" in text:
        return "truncated"
    if "decompression bomb" in text:
        return "too-large"
    return "corrupt"


def _reason(message: str, path: str) -> str:
    """load_image's message without the path: Pillow's own words where it gave some."""
    if f"{path} (" in message:  # "unreadable image (truncated or corrupt): PATH (Pillow's reason)"
        return message.split(f"{path} (", 1)[1][:-1]
    return message.replace(f": {path}", "").replace(path, "<file>").strip()


def scan_file(path: str) -> dict:
    """Every fact about one file. Never raises: a bad file gives ``readable=False`` and a reason."""
    row: dict = {"path": path, "exists": False, "bytes": 0, "readable": False, "error_kind": "", "error": "",
                 "format": "", "mode": "", "width": 0, "height": 0, "stored_gray": False, "is_grayscale": False,
                 "file_md5": "", "pixel_md5": "", "phash": "", "thumb16": ""}
    if not path:
        row.update(error_kind="missing", error="empty image path in the CSV")
        return row
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        row.update(error_kind="missing", error="file not found")
        return row
    except OSError as exc:  # a directory, no permission, ...
        row.update(error_kind="unreadable", error=f"cannot read file ({exc.strerror or exc})")
        return row
    row.update(exists=True, bytes=len(data), file_md5=hashlib.md5(data, usedforsecurity=False).hexdigest())
    if not data:
        row.update(error_kind="empty", error="zero-byte file")
        return row
    try:
        with Image.open(path) as header:
            row.update(format=header.format or "", mode=header.mode)
            w, h = header.size
            orientation = header.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):  # EXIF rotation by 90 degrees: report the upright size
            w, h = h, w
        row.update(width=w, height=h)
        img = load_image(path, min_size=THUMB_MIN_SIDE)
    except ImageLoadError as exc:
        row.update(error_kind=_kind(exc.message), error=_reason(exc.message, path), width=0, height=0)
        return row
    except UnidentifiedImageError:
        row.update(error_kind="not-an-image", error="not an image (or an unsupported format)", width=0, height=0)
        return row
    except (OSError, ValueError, SyntaxError) as exc:
        row.update(error_kind="corrupt", error=str(exc).replace(path, "<file>") or type(exc).__name__,
                   width=0, height=0)
        return row
    rgb = np.asarray(img)
    stored_gray = row["mode"] in GRAY_MODES or (row["mode"] == "P" and _is_gray_rgb(rgb))
    thumb16 = np.asarray(img.convert("L").resize((16, 16), Image.LANCZOS), dtype=np.uint8)
    row.update(readable=True, stored_gray=stored_gray, is_grayscale=stored_gray or _is_gray_rgb(rgb),
               phash=f"{phash(img):016x}", thumb16=thumb16.tobytes().hex())
    if img.size == (w, h):  # decoded at full size anyway: the exact pixel hash is free
        row["pixel_md5"] = _pixel_md5(img)
    return row


def _scan_chunk(paths: list[str]) -> list[dict]:
    return [scan_file(p) for p in paths]


def full_pixel_md5(path: str) -> str:
    """md5 of the full-resolution upright RGB pixels ('' if the file cannot be decoded)."""
    try:
        return _pixel_md5(load_image(path))
    except ImageLoadError:
        return ""


def _pixel_chunk(paths: list[str]) -> list[str]:
    return [full_pixel_md5(p) for p in paths]


# ---------------------------------------------------------------- cache

def cache_dir() -> Path:
    """``$ARTKIT_CACHE_DIR``, else ``~/.cache/artkit``."""
    env = os.environ.get("ARTKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "artkit"


class ScanCache:
    """Facts per file in sqlite, valid while (absolute path, size, mtime_ns) are unchanged.

    A cache that cannot be opened or written (read-only home, a disk full) is silently
    disabled: it is a speed-up, never a reason to fail."""

    def __init__(self, folder: Path | None) -> None:
        self.path: Path | None = None
        self.db: sqlite3.Connection | None = None
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / "scan.sqlite"
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                            "mtime_ns INTEGER, version INTEGER, facts TEXT)")
            self.db.commit()
        except (OSError, sqlite3.Error):
            self.db, self.path = None, None

    @staticmethod
    def stamp(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def get_many(self, stamps: dict[str, tuple[int, int]]) -> dict[str, dict]:
        if self.db is None or not stamps:
            return {}
        found: dict[str, dict] = {}
        keys = list(stamps)
        try:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                q = f"SELECT path, size, mtime_ns, version, facts FROM files WHERE path IN ({','.join('?' * len(part))})"
                for path, size, mtime, version, facts in self.db.execute(q, part):
                    if version == SCAN_VERSION and (size, mtime) == stamps[path]:
                        found[path] = json.loads(facts)
        except sqlite3.Error:
            return {}
        return found

    def put_many(self, rows: Iterable[tuple[dict, tuple[int, int]]]) -> None:
        if self.db is None:
            return
        data = [(r["path"], s[0], s[1], SCAN_VERSION, json.dumps(r)) for r, s in rows]
        try:
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", data)
            self.db.commit()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


# ---------------------------------------------------------------- the scan

def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _executor(kind: str, workers: int) -> Executor:
    if kind == "process":
        return ProcessPoolExecutor(workers)
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    raise ValueError(f"executor must be 'thread' or 'process', not {kind!r}")


def _run_chunks(fn, items: list, workers: int, executor: str, on_done: Callable[[list, list], None]) -> None:
    chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            on_done(chunk, fn(chunk))
        return
    with _executor(executor, workers) as pool:
        futures = {pool.submit(fn, chunk): chunk for chunk in chunks}
        try:
            for fut in as_completed(futures):
                on_done(futures[fut], fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def scan_images(paths: Sequence[str], workers: int | None = None, use_cache: bool = True,
                cache_folder: Path | None = None, progress: Progress | None = None,
                executor: str = "process") -> ScanResult:
    """Facts for each path (absolute paths; ``""`` means an empty CSV cell).

    ``progress(done, total)`` is called as files finish, counting unique files.
    ``executor``: 'process' (default: measured faster than threads, see docs/benchmarks.md) or 'thread'.
    """
    start = time.perf_counter()
    workers = default_workers() if workers is None else max(1, int(workers))
    paths = [os.path.abspath(p) if str(p) else "" for p in map(str, paths)]
    unique = list(dict.fromkeys(paths))
    total = len(unique)
    cache = ScanCache((cache_folder or cache_dir()) if use_cache else None)
    results: dict[str, dict] = {}
    try:
        stamps = {p: s for p in unique if p and (s := ScanCache.stamp(p)) is not None}
        results.update(cache.get_many(stamps))
        hits = len(results)
        todo = [p for p in unique if p not in results]
        done = hits
        if progress:
            progress(done, total)
        pending: list[tuple[dict, tuple[int, int]]] = []

        def finished(chunk: list[str], rows: list[dict]) -> None:
            nonlocal done
            for p, row in zip(chunk, rows):
                results[p] = row
                if row["exists"] and p in stamps:
                    pending.append((row, stamps[p]))
            done += len(chunk)
            if len(pending) >= 1000:  # keep finished work if the run is interrupted
                cache.put_many(pending)
                pending.clear()
            if progress:
                progress(done, total)

        _run_chunks(_scan_chunk, todo, workers, executor, finished)
        cache.put_many(pending)
        decoded = sum(1 for p in todo if results[p]["exists"] and results[p]["bytes"] > 0)
    finally:
        cache_path = cache.path
        cache.close()
    table = pd.DataFrame([results[p] for p in paths], columns=COLUMNS)
    return ScanResult(table, cache_hits=hits, decoded=decoded, seconds=time.perf_counter() - start,
                      cache_path=cache_path)


def fill_pixel_hashes(table: pd.DataFrame, rows: Iterable[int], workers: int | None = None,
                      use_cache: bool = True, cache_folder: Path | None = None, executor: str = "process") -> int:
    """Compute the full-resolution pixel hash where it is missing for the given row positions
    of a scan table (in place, and into the cache). Returns how many files were decoded."""
    need = sorted({table.at[i, "path"] for i in rows if table.at[i, "readable"] and not table.at[i, "pixel_md5"]})
    if not need:
        return 0
    got: dict[str, str] = {}
    _run_chunks(_pixel_chunk, need, default_workers() if workers is None else max(1, workers), executor,
                lambda chunk, hashes: got.update(zip(chunk, hashes)))
    mask = table["path"].isin(got)
    table.loc[mask, "pixel_md5"] = table.loc[mask, "path"].map(got)
    cache = ScanCache((cache_folder or cache_dir()) if use_cache else None)
    try:
        updates = []
        for p in got:
            stamp = ScanCache.stamp(p)
            if stamp is not None:
                row = table.loc[table["path"] == p].iloc[0].to_dict()
                updates.append(({k: _plain(row[k]) for k in COLUMNS}, stamp))
        cache.put_many(updates)
    finally:
        cache.close()
    return len(need)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------- duplicates

def hash_array(hex_hashes: Iterable[str]) -> np.ndarray:
    """pHash hex strings -> uint64 array (unreadable files must be filtered out first)."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    b = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(b, axis=-1).sum(axis=-1)


def hamming_pairs(a: np.ndarray, b: np.ndarray | None = None, threshold: int = 6,
                  block: int = 256) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance) with pHash Hamming distance <= threshold: within ``a`` (i < j),
    or between ``a`` and ``b``. Blocked so memory stays small; 10k x 10k takes about a second."""
    out: list[tuple[int, int, int]] = []
    other = a if b is None else b
    if len(a) == 0 or len(other) == 0 or threshold < 0:
        return out
    for start in range(0, len(a), block):
        chunk = a[start:start + block]
        dist = _popcount(chunk[:, None] ^ other[None, :])
        ii, jj = np.nonzero(dist <= threshold)
        for i, j in zip(ii.tolist(), jj.tolist()):
            gi = start + i
            if b is None and j <= gi:
                continue
            out.append((gi, j, int(dist[i, j])))
    return out


def thumb_correlation(a_hex: str, b_hex: str) -> float:
    """Pearson correlation of two 16x16 grayscale thumbnails (1.0 = same picture up to brightness/contrast).
    Two flat images (no structure to correlate) count as alike when their brightness is close."""
    a = np.frombuffer(bytes.fromhex(a_hex), np.uint8).astype(np.float64)
    b = np.frombuffer(bytes.fromhex(b_hex), np.uint8).astype(np.float64)
    if a.std() < 1 or b.std() < 1:
        return 1.0 if abs(a.mean() - b.mean()) < 8 else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def exact_keys(table: pd.DataFrame) -> pd.Series:
    """Exact-identity key per row: the full-pixel hash where known, else the file-bytes hash;
    '' for unreadable rows. Call after :func:`fill_pixel_hashes` on the candidate pairs."""
    pixel = table["pixel_md5"].where(table["pixel_md5"] != "")
    # byte-identical files have identical pixels: share a pixel hash known for any of them (one copy
    # may have had it computed, and cached, in an earlier run with other candidates)
    pixel = pixel.fillna(pixel.groupby(table["file_md5"]).transform("first"))
    keys = np.where(pixel.notna(), "p:" + pixel.fillna(""), "f:" + table["file_md5"])
    return pd.Series(np.where(table["readable"].astype(bool), keys, ""), index=table.index)


def candidate_rows(table: pd.DataFrame, pairs: Iterable[tuple[int, int, int]]) -> set[int]:
    """Rows of near pairs that might be pixel-identical: same size, close hashes, different bytes."""
    rows: set[int] = set()
    for i, j, d in pairs:
        if d > PIXEL_CHECK_DISTANCE:
            continue
        a, b = table.loc[i], table.loc[j]
        if (a["width"], a["height"]) == (b["width"], b["height"]) and a["file_md5"] != b["file_md5"]:
            rows.update((i, j))
    return rows


@dataclass
class Duplicates:
    """Duplicates among the readable images of a train table and between train and test.

    Indices are row positions of the train (``i``) and test (``t``) tables."""

    exact_groups: list[list[int]] = field(default_factory=list)  # train rows with identical pixels
    near_pairs: list[tuple[int, int, int]] = field(default_factory=list)  # (i, j, distance), not exact
    leaks: list[tuple[int, int, int, bool]] = field(default_factory=list)  # (i, t, distance, exact)
    pixel_decodes: int = 0


def find_duplicates(train: pd.DataFrame, test: pd.DataFrame | None, near_threshold: int,
                    workers: int | None = None, use_cache: bool = True, cache_folder: Path | None = None,
                    executor: str = "process") -> Duplicates:
    """Exact groups and near pairs within ``train``, and train->test copies. ``train``/``test``
    are scan tables with a 0..n-1 index; pixel hashes are filled in for candidate rows."""
    test = test if test is not None else pd.DataFrame(columns=COLUMNS)
    both = pd.concat([train, test], ignore_index=True)
    n = len(train)
    ok = np.flatnonzero(both["readable"].astype(bool).to_numpy() & (both["phash"] != "").to_numpy())
    hashes = hash_array(both["phash"].iloc[ok])
    radius = max(near_threshold, PIXEL_CHECK_DISTANCE)
    pairs = [(int(ok[i]), int(ok[j]), d) for i, j, d in hamming_pairs(hashes, threshold=radius)]
    # byte-identical files give the same key without decoding; same-size close pairs get a pixel hash
    decodes = fill_pixel_hashes(both, candidate_rows(both, pairs), workers, use_cache, cache_folder, executor)
    keys = exact_keys(both)
    dup = Duplicates(pixel_decodes=decodes)
    train_keys = keys.iloc[:n]
    groups = train_keys[train_keys != ""].groupby(train_keys[train_keys != ""]).groups
    dup.exact_groups = sorted(sorted(int(i) for i in idx) for idx in groups.values() if len(idx) > 1)
    # exact copies of one test image among themselves are not leaks of interest; train<->test are
    test_by_key: dict[str, list[int]] = {}
    for t in range(n, len(both)):
        if keys.iloc[t]:
            test_by_key.setdefault(keys.iloc[t], []).append(t - n)
    seen: set[tuple[int, int]] = set()
    for i in range(n):
        for t in test_by_key.get(keys.iloc[i], []) if keys.iloc[i] else []:
            dup.leaks.append((i, t, 0, True))
            seen.add((i, t))
    thumbs = both["thumb16"].to_numpy()
    for i, j, d in pairs:
        if d > near_threshold or (keys.iloc[i] != keys.iloc[j]
                                  and thumb_correlation(thumbs[i], thumbs[j]) < NEAR_MIN_CORRELATION):
            continue
        if i < n and j < n:
            if keys.iloc[i] != keys.iloc[j]:
                dup.near_pairs.append((i, j, d))
        elif i < n <= j and (i, j - n) not in seen:
            dup.leaks.append((i, j - n, d, False))
            seen.add((i, j - n))
    # copy the filled-in pixel hashes back so callers see them
    train["pixel_md5"] = both["pixel_md5"].iloc[:n].to_numpy()
    if len(test):
        test["pixel_md5"] = both["pixel_md5"].iloc[n:].to_numpy()
    dup.leaks.sort()
    return dup


# ---------------------------------------------------------------- inputs shared by eda and clean

@dataclass
class Inputs:
    """The train (and test) tables of a dataset, tolerant of empty cells so they can be reported.

    ``train`` has columns id, path (absolute, '' when the CSV cell is empty), label; its row
    positions match ``raw_train`` (the CSV as text) in the CSV layout."""

    root: Path
    layout: str  # "csv" or "folder"
    train: pd.DataFrame
    test: pd.DataFrame | None
    train_csv: Path | None = None
    test_csv: Path | None = None
    raw_train: pd.DataFrame | None = None
    id_col: str = "id"
    label_col: str = "label"
    image_col: str | None = None
    test_source: str = "none"  # "test.csv", "test/ folder", "none"


def load_inputs(data: str | Path = "data", train_csv: str | Path | None = None, test_csv: str | Path | None = None,
                id_col: str | None = None, image_col: str | None = None, label_col: str | None = None) -> Inputs:
    """Find the dataset like :func:`artkit.data.layout.discover`, but keep rows with empty labels or
    paths, and fall back to a ``test/`` folder when there is a train.csv but no test.csv."""
    from artkit.data.layout import (IMAGE_CANDIDATES, Columns, discover, read_csv_text, table_from_csv,
                                    table_from_flat_folder)

    root = Path(data)
    columns = Columns(id_col, image_col, label_col)
    tr = Path(train_csv) if train_csv else (root / "train.csv" if (root / "train.csv").is_file() else None)
    te = Path(test_csv) if test_csv else (root / "test.csv" if (root / "test.csv").is_file() else None)
    if tr is None and te is None and not root.is_dir():
        raise ArtkitError(f"data folder not found: {root}",
                          "give a folder with train.csv, or one sub-folder per class (or pass --train-csv)")
    if tr is None and te is not None:
        raise ArtkitError(f"no training CSV: {root / 'train.csv'} does not exist", "pass --train-csv FILE")
    if tr is not None:
        train, used_id, used_label = table_from_csv(tr, columns, labelled=True, allow_empty=True)
        raw = read_csv_text(tr)
        image = image_col or next(c for c in IMAGE_CANDIDATES if c in raw.columns)
        test, source = None, "none"
        if te is not None:
            test, _, _ = table_from_csv(te, Columns(id_col, image_col, None), labelled=False, allow_empty=True)
            test, source = test[["id", "path"]], "test.csv"
        elif test_csv is None and (root / "test").is_dir():
            test, source = table_from_flat_folder(root / "test"), "test/ folder"
        return Inputs(root, "csv", train.reset_index(drop=True), test, tr, te, raw, used_id, used_label or "label",
                      image, source)
    src = discover(root, columns=columns)
    train = src.require_train().reset_index(drop=True)
    return Inputs(root, "folder", train, src.test, test_source="test/ folder" if src.test is not None else "none")
