"""Decode once: each image is decoded once per (file content, decode size) into the cache folder, and every later
epoch, validation, eval, predict, explain and ensemble member reads it back memory-mapped. Where a pipeline starts
with fixed operations (a validation view and predict's resize are nothing else; light training starts with a
resize), their output is stored instead, so a later pass over those images neither decodes nor resizes: it reads.

Entries are keyed the way the scan cache is (absolute path, size, mtime_ns and a digest of both ends of the file),
so a changed file is decoded again. They are packed: each process appends the arrays it decodes to a pack file it
holds locked, and a record of each (key, offset, shape) to the pack's index, instead of creating a file per image
(creating a file cost 0.2-0.9 ms on these machines, more than decoding a 256 px JPEG; an append costs 0.02 ms).
Every process reads every pack's index and maps the packs it reads from. A record whose bytes are missing (a run
killed while writing) is decoded again. The cache holds at most :data:`MAX_CACHE_BYTES`, and at most
:data:`FREE_DISK_SHARE` of the free disk; making room deletes the oldest packs that no running process holds. A
cache that cannot be written is a slower run, never a failed one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import struct
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from artkit.data.images import load_image, reduction_factor
from artkit.errors import ArtkitError
from artkit.reader import file_stamp, map_file, open_input, read_from
from artkit.system import cache_dir
from artkit.writer import FILE_LOCKS, append_bytes, open_locked_append

CACHE_MODES = {
    "auto": "decode each image once into the cache folder when it fits the disk (the header says)",
    "off": "decode every image every time",
}
CACHE_VERSION = 4  # bump when load_image's output or the packs' format changes: old ones are then deleted
MAX_CACHE_BYTES = 20 * 1024**3
FREE_DISK_SHARE = 0.5  # of the disk space free when a command starts
ESTIMATE_SAMPLE = 200  # image headers read to estimate a table's decoded size
PACK_MAX_BYTES = 1024**3  # a process starts a new pack past this; room is made a pack at a time
RECORD = struct.Struct("<16sQIII")  # an index record: key digest, offset in the pack, shape (3 dimensions)
REFRESH_SECONDS = 1.0  # a miss rereads the other processes' indexes at most this often
INDEX_SUFFIX, PACK_SUFFIX = f".v{CACHE_VERSION}.idx", f".v{CACHE_VERSION}.pack"


@dataclass(frozen=True)
class DecodeCache:
    """Decoded images under ``folder``; picklable, so every loader process reads and writes the same cache."""

    folder: Path

    def key(self, path: str, decode_size: int | None, view: str = "") -> bytes | None:
        """The key of the decoded ``path`` (or of its ``view``), or None when the file cannot be stamped (it is then
        not cached): the image's 8 bytes, then the view's, so that what a folder holds of an image can be told
        whatever its views."""
        stamp = file_stamp(path)
        if stamp is None:
            return None
        return _image_key(path, stamp, decode_size) + hashlib.blake2b(view.encode(), digest_size=8).digest()

    def decode(self, path: str, decode_size: int | None, entries: dict | None = None) -> np.ndarray:
        """``path`` as :func:`load_image` decodes it (same pixels), from the cache when it holds it. ``entries``:
        each path's key, kept by a reader that asks again (a loader process over its epochs), so the file is
        stamped once per process: a file changed while a run reads it is seen changed by the next run."""
        return self.fetch(path, decode_size, "", lambda: np.asarray(load_image(path, decode_size)), entries)

    def fetch(
        self, path: str, decode_size: int | None, view: str, make: Callable[[], np.ndarray], entries: dict | None
    ) -> np.ndarray:
        """The uint8 array ``make`` gives for ``path`` decoded at ``decode_size`` and named ``view`` (a fixed
        pipeline's output, as :func:`artkit.data.transforms.view_key` names it; "" for the decoded image), from
        the cache when it holds it."""
        name = (path, decode_size, view)
        if entries is None:
            key = self.key(*name)
        elif name in entries:
            key = entries[name]
        else:
            key = entries[name] = self.key(*name)
        store = _store(self.folder)
        if key is not None and (cached := store.get(key)) is not None:
            return cached
        array = make()
        if key is not None:
            store.put(key, array)
        return array


def _image_key(path: str, stamp: tuple, decode_size: int | None) -> bytes:
    key = f"{CACHE_VERSION}|{os.path.abspath(path)}|{stamp}|{decode_size}"
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


_STORES: dict[tuple[int, Path], PackStore] = {}  # by process: a forked loader process starts its own


def _drop_inherited_stores() -> None:
    """In a forked child: close the parent's writers' copies, so the parent's locks end with the parent's use."""
    for store in _STORES.values():
        store.close_writer()
    _STORES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_stores)


def _store(folder: Path) -> PackStore:
    at = (os.getpid(), folder)
    if at not in _STORES:
        _STORES[at] = PackStore(folder)
    return _STORES[at]


def _forget(folder: Path) -> None:
    """Close this process's store of ``folder`` (before its packs are deleted): the next read starts afresh."""
    store = _STORES.pop((os.getpid(), folder), None)
    if store is not None:
        store.close_writer()


@dataclass
class PackWriter:
    """The pack this process appends to, and its index, both held under the index's lock."""

    stem: Path
    index: IO[bytes]
    pack: IO[bytes]

    @classmethod
    def start(cls, folder: Path, nbytes: int) -> PackWriter | None:
        """A pack with room for ``nbytes`` that no other process holds (a killed run's pack goes on being
        filled), else a new one; None when none can be made."""
        folder.mkdir(parents=True, exist_ok=True)
        for index in sorted(folder.glob(f"*{INDEX_SUFFIX}")):
            stem = Path(str(index)[: -len(INDEX_SUFFIX)])
            with suppress(OSError, ArtkitError):  # gone, held, or not whole: the next one
                pack = _stat(stem.with_name(stem.name + PACK_SUFFIX))
                if (pack.st_size if pack is not None else 0) + nbytes > PACK_MAX_BYTES:
                    continue
                fh = open_locked_append(index, create=False)
                if fh is not None and (writer := cls._around(stem, fh, new=False)) is not None:
                    return writer
        stem = folder / f"{time.time_ns():x}-{os.getpid()}-{secrets.token_hex(4)}"
        fh = open_locked_append(stem.with_name(stem.name + INDEX_SUFFIX), create=True)
        return None if fh is None else cls._around(stem, fh, new=True)

    @classmethod
    def _around(cls, stem: Path, index: IO[bytes], new: bool) -> PackWriter | None:
        """The writer of ``stem``, whose ``index`` this process holds; None for an index whose pack is gone (its
        records would name another pack's bytes: it is deleted)."""
        pack_path = stem.with_name(stem.name + PACK_SUFFIX)
        try:
            if not new and _stat(pack_path) is None:
                stem.with_name(stem.name + INDEX_SUFFIX).unlink(missing_ok=True)
                index.close()
                return None
            whole = os.fstat(index.fileno()).st_size // RECORD.size * RECORD.size
            pack = open_locked_append(pack_path, create=new)
            if pack is None:
                raise OSError(f"{pack_path} is gone or held by another process")
            if not new and _records_end(index_path := stem.with_name(stem.name + INDEX_SUFFIX), whole) > _size(pack):
                pack.close()  # bytes its records name were lost (a power cut): appends would land under them
                raise OSError(f"{index_path} names bytes its pack has not: read only")
            os.ftruncate(index.fileno(), whole)  # a record half-written by a killed run
        except BaseException:
            index.close()
            raise
        return cls(stem, index, pack)

    @property
    def pack_name(self) -> str:
        return self.stem.name + PACK_SUFFIX

    def size(self) -> int:
        return _size(self.pack)

    def append(self, key: bytes, array: np.ndarray) -> int:
        """Append ``array``'s bytes and then its record (so a record never names bytes not yet written); the
        offset they start at."""
        offset = os.lseek(self.pack.fileno(), 0, os.SEEK_END)
        append_bytes(self.pack, memoryview(array).cast("B"))
        append_bytes(self.index, RECORD.pack(key, offset, *array.shape))
        return offset

    def close(self) -> None:
        for fh in (self.pack, self.index):
            with suppress(OSError):
                fh.close()


@dataclass
class PackStore:
    """This process's view of the cache folder: every pack's records, the packs it has mapped, and its writer."""

    folder: Path
    records: dict[bytes, tuple[str, int, tuple[int, int, int]]] = field(default_factory=dict)
    read_upto: dict[str, int] = field(default_factory=dict)  # per index file: the bytes of whole records read
    maps: dict[str, Any] = field(default_factory=dict)  # pack name -> mmap
    writer: PackWriter | None = None
    writes_failed: bool = False
    refreshed: float = float("-inf")

    def get(self, key: bytes) -> np.ndarray | None:
        found = self.records.get(key)
        if found is None and time.monotonic() - self.refreshed >= REFRESH_SECONDS:
            self.refresh()
            found = self.records.get(key)
        return None if found is None else self._array(*found)

    def refresh(self) -> None:
        """Read the records every index gained since the last refresh (other processes append too)."""
        self.refreshed = time.monotonic()
        with suppress(OSError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(INDEX_SUFFIX):
                    self._read_index(entry.name)

    def _read_index(self, name: str) -> None:
        start = self.read_upto.get(name, 0)
        try:
            data = read_from(self.folder / name, start)
        except ArtkitError:
            return
        whole = len(data) // RECORD.size * RECORD.size  # a record being written is read next time
        pack = name[: -len(INDEX_SUFFIX)] + PACK_SUFFIX
        for key, offset, *shape in RECORD.iter_unpack(data[:whole]):
            if 3 in (shape[0], shape[2]) and min(shape) > 0:  # an (H, W, 3) image or a (3, H, W) view
                self.records[key] = (pack, offset, tuple(shape))
        self.read_upto[name] = start + whole

    def _array(self, pack: str, offset: int, shape: tuple[int, int, int]) -> np.ndarray | None:
        """The record's array, mapped; None when its pack is gone or shorter (decoded again)."""
        count = shape[0] * shape[1] * shape[2]
        mapped = self.maps.get(pack)
        if mapped is None or len(mapped) < offset + count:  # not mapped yet, or mapped before it grew
            try:
                mapped = self.maps[pack] = map_file(self.folder / pack)
            except ArtkitError:
                return None
            if len(mapped) < offset + count:
                return None
        return np.frombuffer(mapped, dtype=np.uint8, count=count, offset=offset).reshape(shape)

    def put(self, key: bytes, array: np.ndarray) -> None:
        """Append ``array`` to this process's pack; a full or read-only disk only turns writing off."""
        array = np.ascontiguousarray(array, dtype=np.uint8)
        if self.writes_failed or array.ndim != 3 or not 0 < array.nbytes <= PACK_MAX_BYTES:
            return
        try:
            if self.writer is not None and self.writer.size() + array.nbytes > PACK_MAX_BYTES:
                self.close_writer()
            if self.writer is None:
                self.writer = PackWriter.start(self.folder, array.nbytes)
            if self.writer is None:
                raise OSError("no pack could be made")
            if shutil.disk_usage(self.folder).free < 2 * array.nbytes:
                return
            offset = self.writer.append(key, array)
        except (OSError, ArtkitError):
            self.writes_failed = True
            self.close_writer()
            return
        self.records[key] = (self.writer.pack_name, offset, array.shape)

    def close_writer(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@dataclass(frozen=True)
class CachePlan:
    cache: DecodeCache | None
    note: str | None  # for the command's header; None when the user turned the cache off


def plan_decode_cache(
    mode: str, paths: list[str], decode_size: int | None, folder: Path | None = None, max_bytes: int | None = None
) -> CachePlan:
    """The cache for ``paths`` decoded at ``decode_size``, when ``mode`` is auto and they fit its bound, with a
    line that says what was chosen and why. Makes room by deleting the oldest packs."""
    if mode == "off" or not paths:
        return CachePlan(None, None)
    folder = folder or cache_dir() / "decoded"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _forget(folder)  # this process's own pack may be the oldest
        _delete_stale(folder)
        packs = _packs(folder)
        used = sum(size for _, size, _ in packs)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return CachePlan(None, f"decode cache off: cannot write to {folder} ({exc.strerror or exc})")
    limit = min(MAX_CACHE_BYTES if max_bytes is None else max_bytes, used + int(free * FREE_DISK_SHARE))
    need = estimate_bytes(paths, decode_size)
    if need > limit:
        return CachePlan(
            None,
            f"decode cache off: {len(paths):,} images need about {_size_text(need)} decoded, more than the cache "
            f"may hold ({_size_text(limit)}: at most {_size_text(MAX_CACHE_BYTES)}, and half the free disk)",
        )
    short = _make_room(packs, used + int(need * (1 - _share_held(folder, paths, decode_size))) - limit)
    if short > 0:
        return CachePlan(
            None,
            f"decode cache off: running artkit processes hold the cache's packs, and without {_size_text(short)} of "
            f"them the {len(paths):,} images would not fit its bound ({_size_text(limit)})",
        )
    return CachePlan(
        DecodeCache(folder),
        f"decode cache: {len(paths):,} images decoded once, about {_size_text(need)} in {folder} (--cache off to skip)",
    )


def _share_held(folder: Path, paths: list[str], decode_size: int | None) -> float:
    """About what share of ``paths`` the cache holds already (in some view), from at most :data:`ESTIMATE_SAMPLE`
    of them: those bytes are in use and will not be written again, so room is not made for them twice."""
    store = _store(folder)
    store.refresh()
    held = {key[:8] for key in store.records}
    stamped = [(p, s) for p in paths[:: max(1, len(paths) // ESTIMATE_SAMPLE)] if (s := file_stamp(p)) is not None]
    return sum(_image_key(p, s, decode_size) in held for p, s in stamped) / max(len(stamped), 1)


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
    return w * h * 3 + RECORD.size


def _packs(folder: Path) -> list[tuple[float, int, Path]]:
    """(last write, bytes of pack and index, stem) of every pack under ``folder``."""
    found = []
    for index in folder.glob(f"*{INDEX_SUFFIX}"):
        stem = Path(str(index)[: -len(INDEX_SUFFIX)])
        with suppress(OSError):
            files = [index.lstat()] + [s for s in [_stat(stem.with_name(stem.name + PACK_SUFFIX))] if s is not None]
            if all(stat.S_ISREG(f.st_mode) for f in files):  # a link put here must not count, nor be followed
                found.append((max(f.st_mtime for f in files), sum(f.st_size for f in files), stem))
    return found


def _records_end(index: Path, whole: int) -> int:
    """Where the bytes named by the first ``whole`` bytes of ``index`` end in their pack."""
    data = read_from(index, 0)[:whole]
    return max((offset + a * b * c for _, offset, a, b, c in RECORD.iter_unpack(data)), default=0)


def _size(fh: IO[bytes]) -> int:
    return os.fstat(fh.fileno()).st_size


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _make_room(packs: list[tuple[float, int, Path]], excess: int) -> int:
    """Delete the oldest packs that no running process holds until ``excess`` bytes are gone; the bytes that
    could not be freed."""
    for _, size, stem in sorted(packs):
        if excess <= 0:
            break
        with suppress(OSError):
            held = open_locked_append(stem.with_name(stem.name + INDEX_SUFFIX), create=False)
            if held is None and FILE_LOCKS:
                continue  # a running process appends to it
            try:
                for suffix in (INDEX_SUFFIX, PACK_SUFFIX):  # a pack without its index is never read
                    stem.with_name(stem.name + suffix).unlink(missing_ok=True)
            finally:
                if held is not None:
                    held.close()
            excess -= size
    return max(excess, 0)


def _delete_stale(folder: Path) -> None:
    """What cannot be read: a ``.npy`` file per image in two-letter folders (before packs), packs of other
    versions, and a pack whose index is gone (deleted first when room is made)."""
    names = {entry.name for entry in os.scandir(folder)}
    for name in names:
        path = folder / name
        orphan = name.endswith(PACK_SUFFIX) and name[: -len(PACK_SUFFIX)] + INDEX_SUFFIX not in names
        if len(name) == 2 and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif orphan or (name.endswith((".idx", ".pack")) and not name.endswith((INDEX_SUFFIX, PACK_SUFFIX))):
            with suppress(OSError):
                path.unlink()


def _size_text(nbytes: int) -> str:
    if nbytes >= 1024**3:
        return f"{nbytes / 1024**3:.1f} GB"
    return f"{nbytes / 1024**2:.{0 if nbytes >= 10 * 1024**2 else 1}f} MB"
