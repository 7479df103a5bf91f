"""Files in and out. Every output goes through :func:`atomic_write` (a temporary file beside the target,
fsync, rename), so a kill or a full disk never leaves half a file; inputs are read safely (text CSVs,
YAML without tags, tensors without pickles)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from artkit.errors import ArtkitError

TEMP_SUFFIX = ".tmp"  # temporary files are named .<target>.<random>.tmp


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


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` in one rename.

    On any failure the temporary file is removed and ``path`` is left as it was. An OSError (read-only
    folder, full disk) becomes an :class:`ArtkitError` naming the file.
    """
    path = Path(path)
    ensure_dir(path.parent)
    text = "b" not in mode
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise _write_error(path, exc) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    with suppress(OSError):
        os.remove(tmp)


def _write_error(path: Path, exc: OSError) -> ArtkitError:
    reason = exc.strerror or str(exc)
    return ArtkitError(
        f"cannot write {path}: {reason}", "free disk space or choose a folder you can write to; finished files are kept"
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


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | Path, frame, **to_csv: Any) -> None:
    """A pandas DataFrame as UTF-8 CSV without the index."""
    with atomic_write(path, "w") as fh:
        frame.to_csv(fh, index=False, **to_csv)


def read_csv_text(path: str | Path, hint: str = "check the path"):
    """Read a CSV with every cell as text, so ids and names round-trip exactly (leading zeros, unicode)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"CSV file not found: {path}", hint)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise ArtkitError(f"{path} is not UTF-8 text", "re-save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtkitError(
            f"cannot parse CSV {path}: {str(exc).strip()}", "check that it is a comma-separated file with a header"
        ) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping, read with the safe loader (no Python objects)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtkitError(f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ArtkitError(f"{path} must hold a mapping of option: value")
    return data


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


def load_torch(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain data only, with clear messages for the
    files a user can hand it by mistake (empty, truncated, not a PyTorch file, pickled objects)."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"file not found: {path}", "check the path (runs/<name>/best.pt)")
    if path.stat().st_size == 0:
        raise ArtkitError(
            f"{path} is empty (0 bytes), not a checkpoint",
            "a killed copy or download leaves empty files; use the run's best.pt or last.pt",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        if "Unsupported global" in str(exc):  # a real pickle of Python objects (random bytes fail otherwise)
            raise ArtkitError(
                f"{path} needs pickled Python objects to load, which artkit refuses for safety ({first[:160]})",
                "re-save it as a plain state dict: torch.save(model.state_dict(), 'weights.pt')",
            ) from None
        raise _not_torch(path) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as exc:
        raise _not_torch(path, exc) from None


def _not_torch(path: Path, exc: BaseException | None = None) -> ArtkitError:
    detail = f" ({str(exc).splitlines()[0][:160]})" if exc is not None and str(exc) else ""
    return ArtkitError(
        f"{path} is not a PyTorch checkpoint or is truncated{detail}",
        "pass a file written by artkit (runs/<name>/best.pt) or by torch.save",
    )


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


def save_image(image, path: str | Path) -> None:
    """A Pillow image as PNG."""
    with atomic_write(path) as fh:
        image.save(fh, format="PNG")
