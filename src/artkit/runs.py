"""Run directories: one per training run, never overwritten."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

RESULT_COLUMNS = ["epoch", "lr", "train_loss", "val_loss", "val_acc", "val_macro_f1", "seconds", "images_per_s"]


def new_run_dir(out: str | Path, name: str | None) -> Path:
    """``out/name``, or ``out/name2``, ``out/name3``... if taken (default name 'train')."""
    out = Path(out)
    base = name or "train"
    candidate, k = out / base, 2
    while candidate.exists():
        candidate, k = out / f"{base}{k}", k + 1
    candidate.mkdir(parents=True)
    return candidate


def append_result(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows]


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    path.unlink(missing_ok=True)
    for row in rows:
        append_result(path, row)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
