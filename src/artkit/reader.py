"""One way in: every file artkit reads (images, CSVs, YAML configs, checkpoints, weights, logits, run files)
is opened here. A path must be a regular file (no device, FIFO or socket, also through a symlink) of at most
a size set per kind, checked before a byte is read, so a link to ``/dev/zero`` or a FIFO neither fills memory
nor hangs. Text is read as UTF-8, YAML without tags and without alias bombs, tensors without pickles.
"""

from __future__ import annotations

import json
import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from artkit.errors import ArtkitError

MiB = 1 << 20
GiB = 1 << 30
# The largest file of each kind that is read; a larger one is refused before it is opened.
MAX_BYTES = {
    "image": 512 * MiB,
    "decode cache pack": 4 * GiB,
    "decode cache index": 256 * MiB,
    "CSV file": 512 * MiB,
    "config file": 1 * MiB,
    "JSON file": 64 * MiB,
    "checkpoint": 16 * GiB,
    "weights file": 16 * GiB,
    "logits file": 8 * GiB,
    "file": 1 * GiB,
}
YAML_MAX_NODES = 100_000  # a config is a few dozen values; YAML aliases can make a few bytes mean billions
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO without it waits for a writer forever
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _refuse_special(path: Path, mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        linked = " (through a symbolic link)" if path.is_symlink() else ""
        raise ArtkitError(
            f"{what} {path} is {kind}{linked}, not a regular file; refused",
            "point artkit at regular files (a link to /dev/zero or a pipe would never end)",
        )


def _refuse_size(path: Path, size: int, what: str, limit: int) -> None:
    if size > limit:
        raise ArtkitError(
            f"{what} {path} is {size / MiB:,.0f} MiB, more than the {limit / MiB:,.0f} MiB artkit reads for a {what}",
            "check that this is the file you meant",
        )


def check_input(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> os.stat_result:
    """The stat of ``path`` when it is a regular file within ``what``'s size limit; else one clear error."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        broken = " (a broken symbolic link)" if path.is_symlink() else ""
        raise ArtkitError(f"{what} not found: {path}{broken}", "check the path") from None
    except OSError as exc:
        raise ArtkitError(f"cannot read {what} {path}: {exc.strerror or exc}", "check the path") from None
    _refuse_special(path, st.st_mode, what)
    _refuse_size(path, st.st_size, what, limit if limit is not None else MAX_BYTES.get(what, MAX_BYTES["file"]))
    return st


def open_input(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> IO[bytes]:
    """``path`` opened for binary reading, after :func:`check_input`. The open itself cannot block on a FIFO
    swapped in after the check, and the opened file is checked again."""
    path = Path(path)
    check_input(path, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ArtkitError(f"cannot read {what} {path}: {exc.strerror or exc}", "check the path") from None
    try:
        st = os.fstat(fd)
        _refuse_special(path, st.st_mode, what)
        if _NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        with suppress(OSError):
            os.close(fd)
        raise


STAMP_BYTES = 16 * 1024  # a file's stamp reads this much from each end


def file_stamp(path: str | os.PathLike) -> tuple[int, int, str] | None:
    """(size, mtime_ns, digest of the first and last :data:`STAMP_BYTES`) of a file, or None if it cannot be read.

    What the caches key on: the digest catches a file rewritten with the same size and mtime (a copy tool that
    keeps times, a clock reset) where it changes either end of the file, as a re-encoded or replaced image does."""
    import hashlib

    try:
        with open_input(path, "image") as fh:  # a FIFO or device among the images must not hang a cache
            st = os.fstat(fh.fileno())
            head = fh.read(STAMP_BYTES)
            if st.st_size > 2 * STAMP_BYTES:
                fh.seek(-STAMP_BYTES, os.SEEK_END)
            tail = fh.read(STAMP_BYTES)
    except (OSError, ArtkitError):
        return None
    return st.st_size, st.st_mtime_ns, hashlib.blake2b(head + tail, digest_size=16).hexdigest()


def read_bytes(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> bytes:
    """The whole of a regular file, never more than its kind's limit (a file growing while read included)."""
    limit = limit if limit is not None else MAX_BYTES.get(what, MAX_BYTES["file"])
    with open_input(path, what, limit) as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ArtkitError(f"cannot read {what} {path}: {exc.strerror or exc}", "check the file") from None
    _refuse_size(Path(path), len(data), what, limit)
    return data


def read_text(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> str:
    try:
        return read_bytes(path, what, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ArtkitError(f"{what} {path} is not UTF-8 text", "re-save it as UTF-8") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    try:
        return json.loads(read_text(path, what))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ArtkitError(f"cannot parse {what} {path}: {str(exc)[:160]}", "the file is damaged") from None


def read_csv_text(path: str | os.PathLike, hint: str = "check the path"):
    """Read a CSV with every cell as text, so ids and names round-trip exactly (leading zeros, unicode)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtkitError(f"CSV file not found: {path}", hint)
    with open_input(path, "CSV file") as fh:
        try:
            return pd.read_csv(fh, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError:
            raise ArtkitError(f"{path} is not UTF-8 text", "re-save the CSV as UTF-8") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise ArtkitError(
                f"cannot parse CSV {path}: {str(exc).strip()[:200]}",
                "check that it is a comma-separated file with a header",
            ) from None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping, read with the safe loader (no Python objects); a file whose aliases expand it far beyond
    its size (a 'billion laughs' file) is refused before it is built."""
    import yaml

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtkitError(f"config file not found: {path}")
    text = read_text(path, "config file")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(node, path)
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, RecursionError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ArtkitError(f"cannot parse {path}: {first}", "check the YAML syntax") from None
    if not isinstance(data, dict):
        raise ArtkitError(f"{path} must hold a mapping of option: value")
    return data


def _check_expansion(node, path: Path) -> None:
    """Count the nodes ``node`` stands for with every alias expanded, stopping as soon as it is too many."""
    count, stack = 0, [node] if node is not None else []
    while stack:
        current = stack.pop()
        count += 1
        if count > YAML_MAX_NODES:
            raise ArtkitError(
                f"{path} expands to more than {YAML_MAX_NODES:,} values through YAML aliases; refused",
                "a config file lists options and values; write them out without & and * aliases",
            )
        value = current.value
        if isinstance(value, list):
            for item in value:
                stack.extend(item if isinstance(item, tuple) else (item,))


def load_torch(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data only, with clear messages for the
    files a user can hand it by mistake (empty, truncated, not a PyTorch file, pickled objects)."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ArtkitError(f"file not found: {path}", "check the path (runs/<name>/best.pt)")
    if check_input(path, what).st_size == 0:
        raise ArtkitError(
            f"{path} is empty (0 bytes), not a checkpoint",
            "a killed copy or download leaves empty files; use the run's best.pt or last.pt",
        )
    import warnings

    try:
        with open_input(path, what) as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are about the file, not for the user
            return torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _refused_global(str(exc)) or _pickle_with_code(path):
            raise _refused_pickle(path, str(exc)) from None
        raise _not_torch(path) from None
    except RecursionError:
        raise ArtkitError(f"{path} nests its data too deeply to be a checkpoint; refused", _NOT_TORCH_HINT) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        if _refused_global(str(exc)) or _pickle_with_code(path):
            raise _refused_pickle(path, str(exc)) from None
        raise _not_torch(path, exc) from None


_NOT_TORCH_HINT = "pass a file written by artkit (runs/<name>/best.pt) or by torch.save"


def _refused_global(text: str) -> bool:
    """torch's weights-only unpickler refused a Python object (a class, a function such as os.system)."""
    return "Unsupported global" in text or "unsupported GLOBAL" in text


CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _pickle_with_code(path: Path) -> bool:
    """A raw pickle stream (not torch's zip) that names Python objects to build, found by reading its opcodes
    (``pickletools``, which executes nothing); random bytes or another format are not a pickle at all."""
    import pickletools

    try:
        data = read_bytes(path, "checkpoint", limit=MAX_BYTES["JSON file"])
        if not data.startswith(b"\x80"):  # pickles of protocol 2 and later open with PROTO; text is not one
            return False
        ops = [op.name for op, _, _ in pickletools.genops(data)]  # raises unless it is a whole pickle stream
        return ops[-1] == "STOP" and any(name in CODE_OPCODES for name in ops)
    except (ArtkitError, ValueError, EOFError, IndexError, KeyError, TypeError, RecursionError):
        return False


def _refused_pickle(path: Path, text: str) -> ArtkitError:
    named = next((line.strip() for line in text.splitlines() if "nsupported" in line and "GLOBAL" in line), "")
    detail = f" ({named[:160]})" if named else ""
    return ArtkitError(
        f"{path} holds pickled Python code or objects, which artkit refuses to load for safety{detail}",
        "if you trust the file, re-save it as a plain state dict: torch.save(model.state_dict(), 'weights.pt')",
    )


def _not_torch(path: Path, exc: BaseException | None = None) -> ArtkitError:
    detail = f" ({str(exc).splitlines()[0][:160]})" if exc is not None and str(exc) else ""
    return ArtkitError(f"{path} is not a PyTorch checkpoint or is truncated{detail}", _NOT_TORCH_HINT)


def map_file(path: str | os.PathLike, what: str = "decode cache pack") -> Any:
    """A whole regular file memory-mapped read-only (an :class:`mmap.mmap`); one :class:`ArtkitError` when it is
    missing, empty or not a regular file."""
    import mmap

    try:
        with open_input(path, what) as fh:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError) as exc:  # ValueError: an empty file cannot be mapped
        raise ArtkitError(f"{path} is not a readable {what} ({str(exc).splitlines()[0][:160]})", "delete it") from None


def read_from(path: str | os.PathLike, start: int, what: str = "decode cache index") -> bytes:
    """The bytes of a regular file from offset ``start`` to its end (a file another process appends to)."""
    with open_input(path, what) as fh:
        fh.seek(start)
        return fh.read(MAX_BYTES.get(what, MAX_BYTES["file"]))


def load_npz(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, Any]:
    """The arrays ``keys`` of an ``.npz`` file, without pickles (object arrays are refused)."""
    import zipfile

    import numpy as np

    path = Path(path)
    with open_input(path, "logits file") as fh:
        try:
            with np.load(fh, allow_pickle=False) as z:
                missing = [k for k in keys if k not in z.files]
                if missing:
                    raise ArtkitError(f"{path} lacks the arrays {missing}", "pass a logits file written by artkit")
                return {k: z[k] for k in keys}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ArtkitError(
                f"{path} is not a readable logits file ({str(exc).splitlines()[0][:160]})",
                "pass an .npz written by artkit predict --logits or by a k-fold run",
            ) from None
