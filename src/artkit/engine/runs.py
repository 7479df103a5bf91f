"""Run directories: one per training run, never overwritten, and the files that record it
(``results.csv``, ``summary.json``)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

from artkit.errors import ArtkitError
from artkit.reader import read_json, read_text
from artkit.writer import ensure_dir, write_json, write_text

RESULT_COLUMNS = ["epoch", "lr", "train_loss", "val_loss", "val_acc", "val_macro_f1", "seconds", "images_per_s"]
DEFAULT_NAME = "train"


def check_run_name(name: str) -> str:
    """A run name is one path component: no separators, not '.' or '..'."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ArtkitError(
            f"--name must be a plain folder name, not a path (got {name!r})",
            "use --out to choose where runs go, e.g. --out experiments --name b3_focal",
        )
    return name


def run_dir_candidate(out: str | Path, name: str | None) -> Path:
    """``out/name``, or ``out/name2``, ``out/name3``... (default name 'train'): the first that does not exist."""
    out = Path(out)
    base = check_run_name(name or DEFAULT_NAME)
    candidate, k = out / base, 2
    while candidate.exists():
        candidate, k = out / f"{base}{k}", k + 1
    return candidate


def new_run_dir(out: str | Path, name: str | None) -> Path:
    """Create and return a fresh run folder (see :func:`run_dir_candidate`)."""
    folder = run_dir_candidate(out, name)
    ensure_dir(folder.parent)
    try:
        folder.mkdir()
    except FileExistsError:  # another run took the name between the check and now
        return new_run_dir(out, name)
    except OSError as exc:
        raise ArtkitError(f"cannot create the run folder {folder}: {exc.strerror}", "choose another --out") from None
    return folder


def remove_run_dir(folder: Path) -> None:
    """Remove a run folder that a failed start left (nothing finished lives in it)."""
    shutil.rmtree(folder, ignore_errors=True)


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """All epochs' rows, rewritten atomically: a kill never leaves a missing or half-written results.csv."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists() and not path.is_symlink():
        return []
    rows = list(csv.DictReader(io.StringIO(read_text(path, "CSV file"))))
    try:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows]
    except (TypeError, ValueError) as exc:
        raise ArtkitError(f"{path} is damaged ({str(exc)[:120]})", "restore it, or start a new run") from None


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_json(run_dir / "summary.json", summary)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.exists() and not path.is_symlink():
        return None
    summary = read_json(path)
    if not isinstance(summary, dict):
        raise ArtkitError(f"{path} is damaged (not a mapping)", "restore it, or start a new run")
    return summary


def run_finished(run_dir: Path, epochs: int) -> bool:
    """True when the run folder's summary says it ran ``epochs`` epochs or stopped early."""
    s = read_summary(run_dir)
    return bool(s and s.get("finished") and (s.get("stopped_early") or s.get("epochs_run", 0) >= epochs))


NOTHING_KEPT = "no epoch had finished, so nothing was kept"


def kept_note(run_dir: str | Path | None) -> str:
    """What an interrupted run kept, in one line, with the command that continues it (a fold continues its whole
    k-fold run)."""
    if run_dir is None:
        return NOTHING_KEPT
    run = Path(run_dir)
    if run.name.startswith("fold") and (run.parent / "config.yaml").is_file():
        folds = sorted(p.parent.name for p in run.parent.glob("fold*/last.pt"))
        if not folds:
            return NOTHING_KEPT
        return f"kept the finished epochs of {', '.join(folds)}; continue with: artkit train --resume {run.parent}"
    if not (run / "last.pt").exists():
        return NOTHING_KEPT
    try:
        epochs = len(read_results(run / "results.csv"))
    except ArtkitError:
        epochs = 0
    kept = {0: "kept the finished epochs", 1: "kept epoch 1"}.get(epochs, f"kept epochs 1-{epochs}")
    return f"{kept}; continue with: artkit train --resume {run}"


RUNNING = ".running"  # in a run folder while a process trains it: its pid and host


def mark_running(run_dir: Path) -> None:
    import os
    import socket

    write_json(run_dir / RUNNING, {"pid": os.getpid(), "host": socket.gethostname()})


def clear_running(run_dir: Path) -> None:
    from contextlib import suppress

    with suppress(OSError):
        (run_dir / RUNNING).unlink()


def is_running(run_dir: Path) -> bool:
    """A process on this machine is training the run now (a killed one leaves its mark, but not its pid)."""
    import os
    import socket

    path = run_dir / RUNNING
    if not path.is_file():
        return False
    try:
        mark = read_json(path)
        if mark.get("host") != socket.gethostname():
            return True  # another machine's: it cannot be checked from here, so it is taken at its word
        os.kill(int(mark["pid"]), 0)
    except (ArtkitError, KeyError, TypeError, ValueError, AttributeError, ProcessLookupError):
        return False
    except PermissionError:  # the process exists, under another user
        return True
    return True
