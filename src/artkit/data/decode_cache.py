"""Decode once: each image is decoded once per (file content, decode size) into a uint8 ``.npy`` file in the cache
folder, and every later epoch, validation, eval, predict, explain and ensemble member reads it back memory-mapped.
A pipeline without randomness (a validation view, predict's resize) stores its output instead, so a later pass
over those images neither decodes nor resizes: it reads.

Entries are keyed the way the scan cache is (absolute path, size, mtime_ns and a digest of both ends of the file),
so a changed file is decoded again. The cache holds at most :data:`MAX_CACHE_BYTES`, and at most
:data:`FREE_DISK_SHARE` of the free disk; making room deletes the oldest entries first. A cache that cannot be
written is a slower run, never a failed one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artkit.data.images import load_image, reduction_factor
from artkit.errors import ArtkitError
from artkit.reader import file_stamp, map_array, open_input
from artkit.system import cache_dir
from artkit.writer import atomic_write

CACHE_MODES = {
    "auto": "decode each image once into the cache folder when it fits the disk (the header says)",
    "off": "decode every image every time",
}
CACHE_VERSION = 2  # bump when load_image's output changes: old entries are then never read
MAX_CACHE_BYTES = 20 * 1024**3
FREE_DISK_SHARE = 0.5  # of the disk space free when a command starts
ESTIMATE_SAMPLE = 200  # image headers read to estimate a table's decoded size
NPY_HEADER_BYTES = 128


@dataclass(frozen=True)
class DecodeCache:
    """Decoded images under ``folder``; picklable, so every loader process reads and writes the same entries."""

    folder: Path

    def entry(self, path: str, decode_size: int | None, view: str = "") -> Path | None:
        """Where the decoded ``path`` (or its ``view``) lives, or None when the file cannot be stamped (it is then
        not cached)."""
        stamp = file_stamp(path)
        if stamp is None:
            return None
        key = f"{CACHE_VERSION}|{os.path.abspath(path)}|{stamp}|{decode_size}" + (f"|{view}" if view else "")
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npy"

    def decode(self, path: str, decode_size: int | None, entries: dict | None = None) -> np.ndarray:
        """``path`` as :func:`load_image` decodes it (same pixels), from the cache when it holds it. ``entries``:
        where each path's entry lives, kept by a reader that asks again (a loader process over its epochs), so
        the file is stamped once per process: a file changed while a run reads it is seen changed by the next
        run."""
        return self.fetch(path, decode_size, "", lambda: np.asarray(load_image(path, decode_size)), entries)

    def fetch(
        self, path: str, decode_size: int | None, view: str, make: Callable[[], np.ndarray], entries: dict | None
    ) -> np.ndarray:
        """The uint8 array ``make`` gives for ``path`` decoded at ``decode_size`` and named ``view`` (a fixed
        pipeline's output, as :func:`artkit.data.transforms.view_key` names it; "" for the decoded image), from
        the cache when it holds it."""
        key = (path, decode_size, view)
        if entries is None:
            entry = self.entry(*key)
        elif key in entries:
            entry = entries[key]
        else:
            entry = entries[key] = self.entry(*key)
        if entry is not None and (cached := _read_entry(entry)) is not None:
            return cached
        array = make()
        if entry is not None:
            _write_entry(entry, array)
        return array


def _read_entry(entry: Path) -> np.ndarray | None:
    try:
        array = map_array(entry)
    except ArtkitError:  # absent, half-written by a killed run, or not ours
        return None
    if array.dtype != np.uint8 or array.ndim != 3 or 3 not in (array.shape[0], array.shape[2]):
        return None  # neither an (H, W, 3) image nor a (3, H, W) view
    return array


def _write_entry(entry: Path, image: np.ndarray) -> None:
    with suppress(OSError, ArtkitError):  # a full or read-only disk: the image is decoded again next time
        entry.parent.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(entry.parent).free < 2 * image.nbytes:
            return
        with atomic_write(entry, durable=False) as fh:
            np.save(fh, np.ascontiguousarray(image), allow_pickle=False)


@dataclass(frozen=True)
class CachePlan:
    cache: DecodeCache | None
    note: str | None  # for the command's header; None when the user turned the cache off


def plan_decode_cache(
    mode: str, paths: list[str], decode_size: int | None, folder: Path | None = None, max_bytes: int | None = None
) -> CachePlan:
    """The cache for ``paths`` decoded at ``decode_size``, when ``mode`` is auto and they fit its bound, with a
    line that says what was chosen and why. Makes room by deleting the oldest entries."""
    if mode == "off" or not paths:
        return CachePlan(None, None)
    folder = folder or cache_dir() / "decoded"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = _entries(folder)
        used = sum(size for _, size, _ in entries)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return CachePlan(None, f"decode cache off: cannot write to {folder} ({exc.strerror or exc})")
    limit = min(MAX_CACHE_BYTES if max_bytes is None else max_bytes, used + int(free * FREE_DISK_SHARE))
    need = estimate_bytes(paths, decode_size)
    if need > limit:
        return CachePlan(
            None,
            f"decode cache off: {len(paths):,} images need about {_size(need)} decoded, more than the cache may "
            f"hold ({_size(limit)}: at most {_size(MAX_CACHE_BYTES)}, and half the free disk)",
        )
    _make_room(entries, used + need - limit)
    return CachePlan(
        DecodeCache(folder),
        f"decode cache: {len(paths):,} images decoded once, about {_size(need)} in {folder} (--cache off to skip)",
    )


def estimate_bytes(paths: list[str], decode_size: int | None) -> int:
    """About how many bytes ``paths`` take decoded, from the headers of at most :data:`ESTIMATE_SAMPLE` of them."""
    step = max(1, len(paths) // ESTIMATE_SAMPLE)
    sizes = [s for p in paths[::step] if (s := _decoded_bytes(p, decode_size)) is not None]
    return int(np.mean(sizes) * len(paths)) if sizes else 0


def _decoded_bytes(path: str, decode_size: int | None) -> int | None:
    """The bytes of ``path`` decoded by :func:`load_image` at ``decode_size`` (its reduction rule), header only."""
    from PIL import Image

    try:
        with open_input(path, "image") as fh, Image.open(fh) as img:
            (w, h), jpeg = img.size, img.format == "JPEG"
    except (OSError, ValueError, ArtkitError, Image.DecompressionBombError):
        return None
    factor = reduction_factor(min(w, h), decode_size, jpeg)
    w, h = -(-w // factor), -(-h // factor)
    return w * h * 3 + NPY_HEADER_BYTES


def _entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(mtime, bytes, path) of every entry under ``folder``."""
    found = []
    for sub in os.scandir(folder):
        if sub.is_dir(follow_symlinks=False):
            for e in os.scandir(sub.path):
                with suppress(OSError):
                    st = e.stat(follow_symlinks=False)
                    found.append((st.st_mtime, st.st_size, Path(e.path)))
    return found


def _make_room(entries: list[tuple[float, int, Path]], excess: int) -> None:
    """Delete the oldest entries until ``excess`` bytes are gone."""
    for _, size, path in sorted(entries):
        if excess <= 0:
            return
        with suppress(OSError):
            path.unlink()
            excess -= size


def _size(nbytes: int) -> str:
    if nbytes >= 1024**3:
        return f"{nbytes / 1024**3:.1f} GB"
    return f"{nbytes / 1024**2:.{0 if nbytes >= 10 * 1024**2 else 1}f} MB"
