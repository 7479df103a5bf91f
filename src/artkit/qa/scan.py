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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from artkit.data.images import load_image
from artkit.errors import ArtkitError, ImageLoadError
from artkit.reader import file_stamp, read_bytes
from artkit.system import cache_dir, default_workers

Progress = Callable[[int, int], None]

# Bump when a fact's meaning or computation changes: old cache rows are then ignored.
SCAN_VERSION = 5  # 5: JPEGs of exactly 2x, 4x or 8x the thumbnail side are draft-decoded
TABLE = "files_v4"  # the cache key changed in version 4: a new table, old caches stay readable by old artkits
THUMB_MIN_SIDE = 32  # decode JPEGs at the smallest scale that keeps both sides >= this
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
GRAY_TOLERANCE = 10  # channel spread (0..255) under which an RGB pixel counts as gray; JPEG chroma noise is smaller
PIXEL_CHECK_DISTANCE = 4  # pHash distance under which a same-size pair is checked for identical pixels
# A pHash match is confirmed only when the 16x16 grayscale thumbnails also correlate this well: on
# real paintings, pHash distance 8 alone also pairs unrelated dark portraits or similar layouts.
NEAR_MIN_CORRELATION = 0.8
_CHUNK = 32

# one scan row per file: the facts and their values for a file that could not be read
_EMPTY_ROW = {
    "path": "",
    "exists": False,
    "bytes": 0,
    "readable": False,
    "error_kind": "",
    "error": "",
    "format": "",
    "mode": "",
    "width": 0,
    "height": 0,
    "stored_gray": False,
    "is_grayscale": False,
    "file_md5": "",
    "pixel_md5": "",
    "phash": "",
    "thumb16": "",
}
COLUMNS = list(_EMPTY_ROW)


@dataclass(kw_only=True)
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


def _read_file(row: dict, path: str) -> bytes | None:
    """The file's bytes (and their md5 into ``row``), or None with the reason in ``row``."""
    if not path:
        row.update(error_kind="missing", error="empty image path in the CSV")
        return None
    try:
        data = read_bytes(path, "image")  # a regular file within the image size limit, never a device or FIFO
    except ArtkitError as exc:
        kind = "missing" if "not found" in exc.message else "too-large" if "MiB" in exc.message else "unreadable"
        row.update(error_kind=kind, error=exc.message.replace(path, "<file>"))
        return None
    row.update(exists=True, bytes=len(data), file_md5=hashlib.md5(data, usedforsecurity=False).hexdigest())
    if not data:
        row.update(error_kind="empty", error="zero-byte file")
        return None
    return data


def _decode(row: dict, path: str, data: bytes) -> Image.Image | None:
    """Header facts into ``row`` and a reduced-size decode, or None with the reason in ``row``."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as header:
            row.update(format=header.format or "", mode=header.mode)
            w, h = header.size
            orientation = header.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):  # EXIF rotation by 90 degrees: report the upright size
            w, h = h, w
        row.update(width=w, height=h)
        return load_image(path, min_size=THUMB_MIN_SIDE)
    except Image.DecompressionBombError as exc:
        row.update(error_kind="too-large", error=str(exc).replace(path, "<file>"), width=0, height=0)
    except ImageLoadError as exc:
        row.update(error_kind=_kind(exc.message), error=_reason(exc.message, path), width=0, height=0)
    except UnidentifiedImageError:
        row.update(error_kind="not-an-image", error="not an image (or an unsupported format)", width=0, height=0)
    except (OSError, ValueError, SyntaxError) as exc:
        row.update(
            error_kind="corrupt", error=str(exc).replace(path, "<file>") or type(exc).__name__, width=0, height=0
        )
    return None


def scan_file(path: str) -> dict:
    """Every fact about one file. Never raises: a bad file gives ``readable=False`` and a reason."""
    row = dict(_EMPTY_ROW, path=path)
    data = _read_file(row, path)
    if data is None:
        return row
    img = _decode(row, path, data)
    if img is None:
        return row
    rgb = np.asarray(img)
    stored_gray = row["mode"] in GRAY_MODES or (row["mode"] == "P" and _is_gray_rgb(rgb))
    thumb16 = np.asarray(img.convert("L").resize((16, 16), Image.LANCZOS), dtype=np.uint8)
    row.update(
        readable=True,
        stored_gray=stored_gray,
        is_grayscale=stored_gray or _is_gray_rgb(rgb),
        phash=f"{phash(img):016x}",
        thumb16=thumb16.tobytes().hex(),
    )
    if img.size == (row["width"], row["height"]):  # decoded at full size anyway: the exact pixel hash is free
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


class ScanCache:
    """Facts per file in sqlite, valid while (absolute path, size, mtime_ns, digest of the first and last
    16 KiB) are unchanged. The digest catches a file rewritten with the same size and mtime (a copy tool that keeps
    times, a clock reset) where it changes either end of the file, as a re-encoded or replaced image does; an edit
    confined to the middle of a large file with size and mtime forced back is not seen (``--no-cache`` rescans).

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
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, digest TEXT, version INTEGER, facts TEXT)"
            )
            self.db.commit()
        except (OSError, sqlite3.Error):
            self.db, self.path = None, None

    def get_many(self, stamps: dict[str, tuple[int, int, str]]) -> dict[str, dict]:
        if self.db is None or not stamps:
            return {}
        found: dict[str, dict] = {}
        keys = list(stamps)
        try:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                marks = ",".join("?" * len(part))
                q = f"SELECT path, size, mtime_ns, digest, version, facts FROM {TABLE} WHERE path IN ({marks})"
                for path, size, mtime, digest, version, facts in self.db.execute(q, part):
                    if version == SCAN_VERSION and (size, mtime, digest) == stamps[path]:
                        found[path] = json.loads(facts)
        except sqlite3.Error:
            return {}
        return found

    def put_many(self, rows: Iterable[tuple[dict, tuple[int, int, str]]]) -> None:
        if self.db is None:
            return
        data = [(r["path"], s[0], s[1], s[2], SCAN_VERSION, json.dumps(r)) for r, s in rows]
        try:
            self.db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)", data)
            self.db.commit()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


# ---------------------------------------------------------------- the scan


def _executor(kind: str, workers: int) -> Executor:
    if kind == "process":
        return ProcessPoolExecutor(workers)
    if kind == "thread":
        return ThreadPoolExecutor(workers)
    raise ValueError(f"executor must be 'thread' or 'process', not {kind!r}")


def _run_chunks(fn, items: list, workers: int, executor: str, on_done: Callable[[list, list], None]) -> None:
    chunks = [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
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


def scan_images(
    paths: Sequence[str],
    workers: int | None = None,
    use_cache: bool = True,
    cache_folder: Path | None = None,
    progress: Progress | None = None,
    executor: str = "process",
) -> ScanResult:
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
        stamps = {p: s for p in unique if p and (s := file_stamp(p)) is not None}
        results.update(cache.get_many(stamps))
        hits = len(results)
        todo = [p for p in unique if p not in results]
        done = hits
        if progress:
            progress(done, total)
        pending: list[tuple[dict, tuple[int, int, str]]] = []

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
    return ScanResult(
        table=table, cache_hits=hits, decoded=decoded, seconds=time.perf_counter() - start, cache_path=cache_path
    )


def fill_pixel_hashes(
    table: pd.DataFrame,
    rows: Iterable[int],
    workers: int | None = None,
    use_cache: bool = True,
    cache_folder: Path | None = None,
    executor: str = "process",
) -> int:
    """Compute the full-resolution pixel hash where it is missing for the given row positions
    of a scan table (in place, and into the cache). Returns how many files were decoded."""
    need = sorted({table.at[i, "path"] for i in rows if table.at[i, "readable"] and not table.at[i, "pixel_md5"]})
    if not need:
        return 0
    got: dict[str, str] = {}
    _run_chunks(
        _pixel_chunk,
        need,
        default_workers() if workers is None else max(1, workers),
        executor,
        lambda chunk, hashes: got.update(zip(chunk, hashes)),
    )
    mask = table["path"].isin(got)
    table.loc[mask, "pixel_md5"] = table.loc[mask, "path"].map(got)
    cache = ScanCache((cache_folder or cache_dir()) if use_cache else None)
    try:
        updates = []
        for p in got:
            stamp = file_stamp(p)
            if stamp is not None:
                row = table.loc[table["path"] == p].iloc[0].to_dict()
                updates.append(({k: _plain(row[k]) for k in COLUMNS}, stamp))
        cache.put_many(updates)
    finally:
        cache.close()
    return len(need)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v
