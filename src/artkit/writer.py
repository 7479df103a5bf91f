"""One way out: every file artkit writes goes through :func:`atomic_write` (a temporary file beside the target,
fsync, rename), so a kill or a full disk never leaves half a file. A symbolic link as the target is written
through (the link stays, the file it points to is replaced); a target that is not a regular file (a folder, a
device, a FIFO) is refused. A file the user names as an output is checked first by :func:`refuse_clobber`:
it may replace only a file of the same kind that artkit wrote, never an input of the command."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from artkit.errors import ArtkitError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
FILE_LOCKS = fcntl is not None  # advisory locks a killed process drops (flock)

TEMP_SUFFIX = ".tmp"  # temporary files are named .<target>.<random>.tmp
DISK_FULL_HINT = "free disk space or choose a folder you can write to; finished files are kept"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()  # what a plain open() would give; mkstemp's 0600 would hide outputs


def ensure_dir(folder: str | Path) -> Path:
    """Create ``folder`` (and parents); a path that cannot be a folder is a user error, not a traceback."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtkitError(
            f"cannot create the folder {folder}: {exc.strerror or exc}",
            "choose an output folder you can write to (check for a file of the same name)",
        ) from None
    return folder


def write_target(path: str | Path) -> Path:
    """Where writing ``path`` lands: the file a symbolic link points to (the link itself is kept), after
    checking that what is there now, if anything, is a regular file."""
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    with suppress(FileNotFoundError, NotADirectoryError):  # nothing there yet; a bad folder fails when written
        mode = os.stat(target).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
            raise ArtkitError(f"cannot write {path}: it is {kind}", "choose another output path")
    return target


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one rename.

    On any failure the temporary file is removed and ``path`` is left as it was. An OSError (read-only
    folder, full disk), or torch's RuntimeError for a failed write, becomes an :class:`ArtkitError` naming the file.
    ``durable=False`` skips the fsync, for caches: an entry lost to a power cut is made again, and an fsync per
    decoded image would cost more than decoding it.
    """
    shown = Path(path)
    path = write_target(shown)
    ensure_dir(path.parent)
    text = "b" not in mode
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _write_error(shown, exc) from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if text else {})) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _write_error(shown, exc) from None
    except RuntimeError as exc:  # torch.save reports a failed write (a full disk) as a RuntimeError
        _discard(tmp)
        if "writ" not in str(exc).lower():
            raise
        reason = str(exc).splitlines()[0][:120]
        raise ArtkitError(f"cannot write {shown}: disk full? ({reason})", DISK_FULL_HINT) from None
    except BaseException:
        _discard(tmp)
        raise


def open_locked_append(path: Path, create: bool) -> IO[bytes] | None:
    """``path`` opened for appending, unbuffered, under an exclusive lock held until it is closed or the process
    ends; None when another process holds the lock, when ``create`` and the file exists, or when not ``create`` and
    it does not (or was deleted while the lock was taken: the lock would then guard nothing). The decode cache's
    packs: each is appended to by one process at a time, and a killed process's lock goes with it. A link is not
    followed, and anything but a regular file is refused. Where there are no such locks (Windows), only a file
    this call creates is opened."""
    if not FILE_LOCKS and not create:
        return None
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)  # O_NONBLOCK: a FIFO must not hang us
    try:
        fd = os.open(path, flags | (os.O_CREAT | os.O_EXCL if create else 0), 0o666)
    except (FileExistsError, FileNotFoundError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if FILE_LOCKS:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                now = os.stat(path, follow_symlinks=False)
            except (BlockingIOError, FileNotFoundError):
                now = None
            if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                os.close(fd)
                return None
        return os.fdopen(fd, "ab", buffering=0)
    except BaseException:
        with suppress(OSError):
            os.close(fd)
        raise


def append_bytes(fh: IO[bytes], data: bytes | memoryview) -> None:
    """Write all of ``data`` to an unbuffered file, which may take several writes."""
    view = memoryview(data).cast("B")
    while view:
        written = fh.write(view)
        if not written:  # None (would block) or 0: a file system that takes no more
            raise OSError(f"cannot append to {fh.name}: the write took no bytes")
        view = view[written:]


def _discard(tmp: str) -> None:
    with suppress(OSError):
        os.remove(tmp)


def _write_error(path: Path, exc: OSError) -> ArtkitError:
    reason = exc.strerror or str(exc)
    if getattr(exc, "errno", None) == 28:  # ENOSPC
        reason = f"disk full? ({reason})"
    return ArtkitError(f"cannot write {path}: {reason}", DISK_FULL_HINT)


# --------------------------------------------------------------------------- what an output may replace


def _csv_header(path: Path) -> list[str]:
    import csv

    with suppress(OSError, UnicodeDecodeError, csv.Error), open(path, encoding="utf-8", newline="") as fh:
        return next(csv.reader([fh.readline(65536)]), [])
    return []


def _zip_holds(path: Path, member_end: str, needle: bytes | None = None) -> bool:
    """A zip file (torch and numpy both write zips) with a member ending in ``member_end`` (holding ``needle``)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(member_end)]
            if not names:
                return False
            if needle is None:
                return True
            info = z.getinfo(names[0])
            return info.file_size < (64 << 20) and needle in z.read(names[0])
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return False


# What an existing file must look like for an output of each kind to replace it: a file artkit wrote as that kind.
OUTPUT_KINDS: dict[str, tuple[str, Callable[[Path], bool]]] = {
    "submission": ("a submission (a CSV of two columns)", lambda p: len(_csv_header(p)) == 2),
    "logits": ("a logits file", lambda p: _zip_holds(p, "logits.npy")),
    "weights": ("an artkit weights file", lambda p: _zip_holds(p, "data.pkl", b"artkit-weights")),
    "runs table": ("an `artkit runs` table", lambda p: _csv_header(p)[:3] == ["name", "model", "img_size"]),
}
DATA_FOLDER_INPUTS = ("train.csv", "test.csv", "sample_submission.csv")  # read from a data folder by default


def refuse_clobber(output: str | Path, kind: str, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse, before any work, an output that is one of the command's ``inputs`` or an existing file that is not
    an artkit ``kind`` file (a user's CSV, a run's checkpoint, ...); a symbolic link is judged by what it points to."""
    out = Path(output)
    target = write_target(out).resolve()
    for given in inputs:
        if given and Path(given).resolve() == target:
            raise ArtkitError(
                f"the output {out} is also an input ({given}); it would be overwritten", "choose another output path"
            )
    if target.exists():
        what, recognise = OUTPUT_KINDS[kind]
        if not recognise(target):
            raise ArtkitError(
                f"{out} exists and is not {what} written by artkit; it would be overwritten",
                "choose another output path, or move the file away first",
            )


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed write left in ``folder``; returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        with suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


def write_csv(path: str | Path, frame, **to_csv: Any) -> None:
    """A pandas DataFrame as UTF-8 CSV without the index."""
    with atomic_write(path, "w") as fh:
        frame.to_csv(fh, index=False, **to_csv)


def write_yaml(
    path: str | Path, data: dict[str, Any], comments: dict[str, str] | None = None, header: str | None = None
) -> None:
    """``data`` as YAML, one key per line, with an optional ``# comment`` after each key's value."""
    write_text(path, yaml_text(data, comments, header))


def yaml_text(data: dict[str, Any], comments: dict[str, str] | None = None, header: str | None = None) -> str:
    import yaml

    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for key, value in data.items():
        text = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=10_000).rstrip("\n")
        note = (comments or {}).get(key)
        if note and "\n" not in text:
            text = f"{text}  # {note}"
        lines.append(text)
    return "\n".join(lines) + "\n"


def save_torch(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_write(path) as fh:
        torch.save(obj, fh)


def save_npz(path: str | Path, **arrays: Any) -> None:
    import numpy as np

    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """A matplotlib figure as PNG (then closed)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    finally:
        plt.close(fig)


def save_image(image, path: str | Path, format: str = "PNG", **options: Any) -> None:
    """A Pillow image (PNG unless ``format`` says otherwise, with Pillow's ``options`` such as quality)."""
    with atomic_write(path) as fh:
        image.save(fh, format=format, **options)
