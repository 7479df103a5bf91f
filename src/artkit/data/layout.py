"""Find a dataset on disk: Dacon-style CSVs or a folder per class.

Every table is a DataFrame with string columns ``id``, ``path`` (absolute) and, when labelled,
``label``. Everything is read as text so ids keep their exact spelling (leading zeros, unicode
names) from input to submission.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artkit.errors import ArtkitError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ID_CANDIDATES = ("id", "image_id", "ID", "Id")
IMAGE_CANDIDATES = ("img_path", "image_path", "path", "image", "file", "filename", "file_name")
LABEL_CANDIDATES = ("artist", "label", "class", "target", "category")


@dataclass
class Columns:
    """Column names of a CSV layout; None means detect from common names."""

    id: str | None = None
    image: str | None = None
    label: str | None = None


@dataclass
class DataSource:
    """A discovered dataset: a labelled train table and an optional unlabelled test table."""

    root: Path
    layout: str  # "csv" or "folder"
    train: pd.DataFrame | None
    test: pd.DataFrame | None
    train_csv: Path | None = None
    test_csv: Path | None = None
    sample_submission: Path | None = None
    id_col: str = "id"
    label_col: str = "label"
    notes: list[str] = field(default_factory=list)

    def require_train(self) -> pd.DataFrame:
        if self.train is None or len(self.train) == 0:
            raise ArtkitError(f"no labelled training images found in {self.root}",
                              "give a folder with train.csv (id,img_path,label) or one sub-folder per class, "
                              "or point at a CSV with --train-csv")
        return self.train

    def require_test(self) -> pd.DataFrame:
        if self.test is None or len(self.test) == 0:
            raise ArtkitError(f"no test images found in {self.root}",
                              "give a folder with test.csv (id,img_path) or a test/ folder, or use --csv FILE")
        return self.test


def read_csv_text(path: Path) -> pd.DataFrame:
    """Read a CSV with every cell as text, so ids and names round-trip exactly."""
    if not path.is_file():
        raise ArtkitError(f"CSV file not found: {path}", "check the path, or pass --train-csv/--test-csv")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raise ArtkitError(f"{path} is not UTF-8 text", "re-save the CSV as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtkitError(f"cannot parse CSV {path}: {exc}", "check that it is a comma-separated file with a header") from None


def _pick(frame: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], what: str, flag: str,
          path: Path, required: bool = True) -> str | None:
    cols = list(frame.columns)
    if wanted is not None:
        if wanted not in cols:
            raise ArtkitError(f"column '{wanted}' not found in {path} (columns: {', '.join(cols)})",
                              f"name the {what} column with {flag}")
        return wanted
    for cand in candidates:
        if cand in cols:
            return cand
    if required:
        raise ArtkitError(f"no {what} column in {path} (columns: {', '.join(cols)}; looked for {', '.join(candidates)})",
                          f"name it with {flag}")
    return None


def table_from_csv(csv_path: Path, columns: Columns, labelled: bool,
                   allow_empty: bool = False) -> tuple[pd.DataFrame, str, str | None]:
    """Read a Dacon-style CSV into the common table form. Image paths are relative to the CSV's folder.

    ``allow_empty``: keep rows with an empty label or image path (path ``""``) instead of raising;
    ``artkit eda``/``clean`` use it to report such rows.
    """
    csv_path = Path(csv_path)
    raw = read_csv_text(csv_path)
    image_col = _pick(raw, columns.image, IMAGE_CANDIDATES, "image path", "--image-col", csv_path)
    id_col = _pick(raw, columns.id, ID_CANDIDATES, "id", "--id-col", csv_path, required=False)
    label_col = _pick(raw, columns.label, LABEL_CANDIDATES, "label", "--label-col", csv_path, required=labelled)
    base = str(csv_path.resolve().parent)
    # normpath, not Path.resolve per row: the same absolute path at a fraction of the cost
    paths = [os.path.normpath(os.path.join(base, p)) if p else "" for p in raw[image_col]]
    ids = raw[id_col] if id_col else pd.Series([Path(p).stem for p in raw[image_col]])
    table = pd.DataFrame({"id": ids.astype(str).values, "path": paths})
    if label_col is not None and label_col in raw.columns:
        table["label"] = raw[label_col].values
        if labelled and not allow_empty:
            empty = table.index[table["label"].str.strip() == ""].tolist()
            if empty:
                some = ", ".join(table["id"].iloc[empty[:5]])
                raise ArtkitError(f"{len(empty)} row(s) of {csv_path} have an empty label (ids: {some})",
                                  "fill or drop them; `artkit clean` writes a cleaned CSV")
    blank = table.index[table["path"] == ""].tolist()
    if blank and not allow_empty:
        raise ArtkitError(f"{len(blank)} row(s) of {csv_path} have an empty image path (ids: "
                          f"{', '.join(table['id'].iloc[blank[:5]])})", "fill or drop those rows")
    return table, id_col or "id", label_col


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))


def _unique_ids(paths: list[Path], base: Path) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [p.relative_to(base).with_suffix("").as_posix() for p in paths]


def table_from_class_folders(root: Path, exclude: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``root/<class>/*.jpg`` -> table; class names are the folder names."""
    rows: list[tuple[Path, str]] = []
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                            and d.name not in exclude):
        rows += [(p, class_dir.name) for p in _images_under(class_dir)]
    paths = [p for p, _ in rows]
    return pd.DataFrame({"id": _unique_ids(paths, root), "path": [str(p.resolve()) for p in paths],
                         "label": [c for _, c in rows]}, columns=["id", "path", "label"])


def table_from_flat_folder(folder: Path) -> pd.DataFrame:
    paths = _images_under(folder)
    return pd.DataFrame({"id": _unique_ids(paths, folder), "path": [str(p.resolve()) for p in paths]})


def discover(data: str | Path = "data", train_csv: str | Path | None = None, test_csv: str | Path | None = None,
             columns: Columns | None = None) -> DataSource:
    """Find the train and test tables under ``data`` (or in explicitly given CSVs)."""
    columns = columns or Columns()
    root = Path(data)
    if train_csv is None and test_csv is None and not root.is_dir():
        raise ArtkitError(f"data folder not found: {root}",
                          "pass --data DIR (a folder with train.csv, or one sub-folder per class)")
    train_csv = Path(train_csv) if train_csv else (root / "train.csv" if (root / "train.csv").is_file() else None)
    test_csv = Path(test_csv) if test_csv else (root / "test.csv" if (root / "test.csv").is_file() else None)
    sample = root / "sample_submission.csv"
    sample = sample if sample.is_file() else None

    if train_csv is not None or test_csv is not None:
        train = test = None
        id_col, label_col = columns.id or "id", columns.label or "label"
        if train_csv is not None:
            train, id_col, label_col = table_from_csv(train_csv, columns, labelled=True)
        if test_csv is not None:
            # the column flags name the training CSV's columns; a test CSV may use the usual names
            test_cols = list(read_csv_text(test_csv).columns)
            keep = Columns(*(c if c in test_cols else None for c in (columns.id, columns.image)), None)
            test, test_id_col, _ = table_from_csv(test_csv, keep, labelled=False)
            test = test.drop(columns=[c for c in ("label",) if c in test.columns])
            if train_csv is None:
                id_col = test_id_col
        if sample is not None:
            sample_cols = list(read_csv_text(sample).columns)
            if len(sample_cols) >= 2:
                id_col, label_col = sample_cols[0], sample_cols[1]
        return DataSource(root, "csv", train, test, train_csv, test_csv, sample, id_col, label_col or "label")

    train_dir = root / "train" if (root / "train").is_dir() else root
    # in root/<class>/ layouts a sibling test/ folder holds the unlabelled images, not a class
    exclude = frozenset({"test"}) if train_dir == root else frozenset()
    train = table_from_class_folders(train_dir, exclude)
    test_dir = root / "test"
    test = table_from_flat_folder(test_dir) if test_dir.is_dir() else None
    if len(train) == 0 and test is None:
        raise ArtkitError(f"{root} has neither train.csv nor class sub-folders",
                          "use the Dacon layout (train.csv, test.csv) or root/<class>/*.jpg")
    return DataSource(root, "folder", train if len(train) else None, test, None, None, sample, "id", "label")


def class_names(labels) -> list[str]:
    """The fixed class order: sorted unique names (Python's code-point order, locale-independent)."""
    return sorted(set(labels))
