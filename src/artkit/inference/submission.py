"""The test table in its given order, and the files predict and ensemble write: the submission CSV and the
logits ``.npz`` that ``artkit ensemble`` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from artkit.data.layout import LABEL_CANDIDATES, DataSource, discover, read_table, table_from_csv
from artkit.data.options import Columns
from artkit.errors import ArtkitError
from artkit.reader import load_npz, read_csv_text
from artkit.writer import save_npz, write_csv


def load_test_table(data: str, csv: str | None, columns: Columns) -> tuple[pd.DataFrame, DataSource | None]:
    """The test images in their given order, from ``--csv`` or the dataset folder."""
    if csv:
        table = table_from_csv(csv, Columns(id=columns.id, image=columns.image), labelled=False)
        source = discover(data) if Path(data).is_dir() else None
        return table[["id", "path"]], source
    if not Path(data).is_dir():
        raise ArtkitError(
            f"data folder not found: {data}",
            "predicting needs the test images: pass the dataset folder that holds them (test.csv or test/) "
            "with --data DIR, or a test CSV with --csv FILE",
        )
    source = discover(data, columns=columns)
    return source.require_test(), source


def labelled_csv(csv: str, columns: Columns) -> tuple[pd.DataFrame, str] | None:
    """The rows of ``--csv`` with their labels, and the label column, when it has one (then predict and
    ensemble score themselves on it); None for a CSV of images only."""
    names = list(read_csv_text(csv).columns)
    label = columns.label if columns.label in names else next((c for c in LABEL_CANDIDATES if c in names), None)
    if label is None:
        return None
    read = read_table(csv, Columns(id=columns.id, image=columns.image, label=label), True)
    return read.table, label


def label_targets(test: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Class indices of a labelled test table; every label must be one of ``classes``."""
    unknown = sorted(set(test["label"]) - set(classes))
    if unknown:
        raise ArtkitError(
            f"labels not among the model's classes: {', '.join(unknown[:5])}", "check the spelling of the labels"
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in test["label"]])


def submission_columns(source: DataSource | None, label_name: str | None, ids: list[str]) -> tuple[str, str]:
    """Header of the submission: as in sample_submission.csv when present, checked against the test ids."""
    if source is None or source.sample_submission is None:
        return "id", label_name or "label"
    sample = read_csv_text(source.sample_submission)
    if len(sample.columns) < 2:
        raise ArtkitError(f"{source.sample_submission} should have an id and a label column")
    sample_ids = sample[sample.columns[0]].tolist()
    if sample_ids != ids:
        missing = sorted(set(sample_ids) - set(ids))[:3]
        extra = sorted(set(ids) - set(sample_ids))[:3]
        detail = (
            f"ids only in sample_submission: {missing}; only in the test set: {extra}"
            if (missing or extra)
            else "same ids in another order"
        )
        raise ArtkitError(
            f"the test images do not match {source.sample_submission} ({detail})",
            "check --csv/--data; a shuffled test order silently ruins a submission",
        )
    return sample.columns[0], sample.columns[1]


def save_logits(path: Path, ids: list[str], classes: list[str], logits: np.ndarray) -> None:
    """An ``.npz`` of ``ids``, ``classes`` and float32 ``logits``: what ``artkit ensemble`` reads."""
    save_npz(path, ids=np.array(ids, dtype=str), classes=np.array(classes, dtype=str), logits=logits.astype(np.float32))


def load_logits(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    path = Path(path)
    hint = "write one with `artkit predict CKPT --logits FILE`"
    arrays = load_npz(path, ("ids", "classes", "logits"))
    ids, classes, logits = arrays["ids"].tolist(), arrays["classes"].tolist(), arrays["logits"]
    if logits.dtype.kind not in "fiu":
        raise ArtkitError(f"{path} holds logits of type {logits.dtype}, not real numbers", hint)
    logits = logits.astype(np.float32)
    if logits.ndim != 2 or logits.shape != (len(ids), len(classes)):
        raise ArtkitError(
            f"{path} holds logits of shape {tuple(logits.shape)} for {len(ids)} ids and {len(classes)} classes", hint
        )
    return ids, classes, logits


def write_submission(path: Path, ids: list[str], labels: list[str], id_col: str, label_col: str) -> None:
    write_csv(path, pd.DataFrame({id_col: ids, label_col: labels}))


def refuse_overwriting_inputs(outputs: list[str | Path | None], inputs: list[str | Path | None]) -> None:
    """An output path that is also an input would destroy it: refuse before any work."""
    given = {Path(p).resolve(): p for p in inputs if p}
    for out in outputs:
        if out and Path(out).resolve() in given:
            raise ArtkitError(
                f"the output {out} is also an input ({given[Path(out).resolve()]}); it would be overwritten",
                "choose another -o/--out or --logits path",
            )
