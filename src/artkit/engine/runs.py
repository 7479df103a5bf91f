"""Run directories: one per training run, never overwritten, and the files that record it
(``results.csv``, ``summary.json``)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

from artkit.errors import ArtkitError
from artkit.io import ensure_dir, read_json, write_json, write_text

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
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows]


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_json(run_dir / "summary.json", summary)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    return read_json(path) if path.exists() else None


def run_finished(run_dir: Path, epochs: int) -> bool:
    """True when the run folder's summary says it ran ``epochs`` epochs or stopped early."""
    s = read_summary(run_dir)
    return bool(s and s.get("finished") and (s.get("stopped_early") or s.get("epochs_run", 0) >= epochs))
