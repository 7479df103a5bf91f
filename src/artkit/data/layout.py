"""Find a dataset on disk: Dacon-style CSVs or a folder per class. One :func:`discover` serves every command.

Every table is a DataFrame with string columns ``id``, ``path`` (absolute) and, when labelled,
``label``. Everything is read as text so ids keep their exact spelling (leading zeros, unicode
names) from input to submission.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artkit.data.labels import stripped_labels
from artkit.data.options import Columns
from artkit.errors import ArtkitError
from artkit.reader import read_csv_text

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ID_CANDIDATES = ("id", "image_id", "ID", "Id")
IMAGE_CANDIDATES = ("img_path", "image_path", "path", "image", "file", "filename", "file_name")
LABEL_CANDIDATES = ("artist", "label", "class", "target", "category")
CSV_HINT = "check the path, or pass --train-csv/--test-csv"


@dataclass(kw_only=True)
class DataSource:
    """A discovered dataset: a labelled train table and an optional unlabelled test table."""

    root: Path
    layout: str  # "csv" or "folder"
    train: pd.DataFrame | None
    test: pd.DataFrame | None
    train_csv: Path | None = None
    test_csv: Path | None = None
    test_source: str = "none"  # "test.csv" (or the CSV's name), "test/ folder" or "none"
    sample_submission: Path | None = None
    raw_train: pd.DataFrame | None = None  # the training CSV as text, rows aligned with ``train``
    id_col: str = "id"
    image_col: str | None = None
    label_col: str = "label"  # the submission's label column (sample_submission.csv's, else the training CSV's)
    train_label_col: str | None = None  # the training CSV's label column
    notes: list[str] = field(default_factory=list)

    def require_train(self) -> pd.DataFrame:
        if self.train is None or len(self.train) == 0:
            raise ArtkitError(
                f"no labelled training images found in {self.root}",
                "give a folder with train.csv (id,img_path,label) or one sub-folder per class, "
                "or point at a CSV with --train-csv",
            )
        return self.train

    def require_test(self) -> pd.DataFrame:
        if self.test is None or len(self.test) == 0:
            raise ArtkitError(
                f"no test images found in {self.root}",
                "give a folder with test.csv (id,img_path) or a test/ folder, or use --csv FILE",
            )
        return self.test


def _pick(
    frame: pd.DataFrame,
    wanted: str | None,
    candidates: tuple[str, ...],
    what: str,
    flag: str,
    path: Path,
    required: bool = True,
) -> str | None:
    cols = list(frame.columns)
    if wanted is not None:
        if wanted not in cols:
            raise ArtkitError(
                f"column '{wanted}' not found in {path} (columns: {', '.join(cols)})",
                f"name the {what} column with {flag}",
            )
        return wanted
    for cand in candidates:
        if cand in cols:
            return cand
    if required:
        raise ArtkitError(
            f"no {what} column in {path} (columns: {', '.join(cols)}; looked for {', '.join(candidates)})",
            f"name it with {flag}",
        )
    return None


@dataclass(kw_only=True)
class CsvTable:
    """A CSV read into the common table form, with the column names it used and its raw text."""

    table: pd.DataFrame
    id_col: str
    image_col: str
    label_col: str | None
    raw: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def read_table(csv_path: str | Path, columns: Columns, labelled: bool, tolerant: bool = False) -> CsvTable:
    """Read a Dacon-style CSV. Image paths are relative to the CSV's folder.

    ``tolerant``: keep rows with an empty label or image path (path ``""``) instead of refusing them;
    ``artkit eda``/``clean`` use it to report such rows.
    """
    csv_path = Path(csv_path)
    raw = read_csv_text(csv_path, CSV_HINT)
    image_col = _pick(raw, columns.image, IMAGE_CANDIDATES, "image path", "--image-col", csv_path)
    id_col = _pick(raw, columns.id, ID_CANDIDATES, "id", "--id-col", csv_path, required=False)
    label_col = _pick(raw, columns.label, LABEL_CANDIDATES, "label", "--label-col", csv_path, required=labelled)
    base = str(csv_path.resolve().parent)
    # normpath, not Path.resolve per row: the same absolute path at a fraction of the cost
    paths = [os.path.normpath(os.path.join(base, p)) if p else "" for p in raw[image_col]]
    ids = raw[id_col] if id_col else pd.Series([Path(p).stem for p in raw[image_col]])
    table = pd.DataFrame({"id": ids.astype(str).values, "path": paths})
    notes = []
    if label_col is not None:
        labels, changed, example = stripped_labels(raw[label_col])
        table["label"] = labels
        if changed:
            notes.append(f"{changed} label(s) of {csv_path.name} had spaces around them, stripped (e.g. {example!r})")
    if not tolerant:
        _refuse_empty_cells(table, csv_path, labelled and label_col is not None)
    return CsvTable(table=table, id_col=id_col or "id", image_col=image_col, label_col=label_col, raw=raw, notes=notes)


def _refuse_empty_cells(table: pd.DataFrame, csv_path: Path, labelled: bool) -> None:
    if labelled:
        empty = table.index[table["label"].str.strip() == ""].tolist()
        if empty:
            some = ", ".join(table["id"].iloc[empty[:5]])
            raise ArtkitError(
                f"{len(empty)} row(s) of {csv_path} have an empty label (ids: {some})",
                "fill or drop them; `artkit clean` writes a cleaned CSV",
            )
    blank = table.index[table["path"] == ""].tolist()
    if blank:
        raise ArtkitError(
            f"{len(blank)} row(s) of {csv_path} have an empty image path (ids: "
            f"{', '.join(table['id'].iloc[blank[:5]])})",
            "fill or drop those rows",
        )


def table_from_csv(csv_path: str | Path, columns: Columns, labelled: bool, tolerant: bool = False) -> pd.DataFrame:
    """Just the table of :func:`read_table`."""
    return read_table(csv_path, columns, labelled, tolerant).table


def _images_under(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _unique_ids(paths: list[Path], base: Path) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [p.relative_to(base).with_suffix("").as_posix() for p in paths]


ARTKIT_MARKERS = ("eda.json", "clean.json", "config.yaml", ".artkit-demo")  # files only artkit's outputs hold


def is_artkit_output(folder: Path) -> bool:
    """An eda/clean output, a run (or a folder of runs), or a demo folder: never a class."""
    if any((folder / m).is_file() for m in ARTKIT_MARKERS):
        return True
    return any((sub / "config.yaml").is_file() for sub in folder.iterdir() if sub.is_dir())


def class_folders(root: Path, exclude: frozenset[str] = frozenset()) -> tuple[list[Path], list[str]]:
    """The class sub-folders of ``root`` and the names of artkit output folders skipped among them."""
    candidates = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in exclude
    )
    skipped = [d.name for d in candidates if is_artkit_output(d)]
    return [d for d in candidates if d.name not in skipped], skipped


def table_from_class_folders(root: Path, exclude: frozenset[str] = frozenset()) -> pd.DataFrame:
    """``root/<class>/*.jpg`` -> table; class names are the folder names (artkit's own outputs are skipped)."""
    rows: list[tuple[Path, str]] = []
    for class_dir in class_folders(root, exclude)[0]:
        rows += [(p, class_dir.name) for p in _images_under(class_dir)]
    paths = [p for p, _ in rows]
    return pd.DataFrame(
        {"id": _unique_ids(paths, root), "path": [str(p.resolve()) for p in paths], "label": [c for _, c in rows]},
        columns=["id", "path", "label"],
    )


def table_from_flat_folder(folder: Path) -> pd.DataFrame:
    paths = _images_under(folder)
    return pd.DataFrame({"id": _unique_ids(paths, folder), "path": [str(p.resolve()) for p in paths]})


def discover(
    data: str | Path = "data",
    train_csv: str | Path | None = None,
    test_csv: str | Path | None = None,
    columns: Columns | None = None,
    tolerant: bool = False,
) -> DataSource:
    """Find the train and test tables under ``data`` (or in explicitly given CSVs).

    The test set is ``test_csv``, else ``data/test.csv``, else the images of ``data/test/``.
    ``tolerant`` keeps rows with empty cells (for eda/clean, which report them).
    """
    columns = columns or Columns()
    root = Path(data)
    if train_csv is None and test_csv is None and not root.is_dir():
        raise ArtkitError(
            f"data folder not found: {root}", "pass the dataset folder (with train.csv, or one sub-folder per class)"
        )
    train_path = Path(train_csv) if train_csv else _file_or_none(root / "train.csv")
    test_path = Path(test_csv) if test_csv else _file_or_none(root / "test.csv")
    if train_path is not None or test_path is not None:
        return _discover_csv(root, train_path, test_path, columns, tolerant, explicit_test=test_csv is not None)
    return _discover_folders(root)


def _file_or_none(path: Path) -> Path | None:
    """``path`` if something is there (a special file there is refused by the reader, not taken for absent)."""
    return path if path.exists() or path.is_symlink() else None


def _discover_csv(
    root: Path, train_path: Path | None, test_path: Path | None, columns: Columns, tolerant: bool, explicit_test: bool
) -> DataSource:
    src = DataSource(
        root=root,
        layout="csv",
        train=None,
        test=None,
        train_csv=train_path,
        test_csv=test_path,
        sample_submission=_file_or_none(root / "sample_submission.csv"),
        id_col=columns.id or "id",
        label_col=columns.label or "label",
    )
    if train_path is not None:
        read = read_table(train_path, columns, labelled=True, tolerant=tolerant)
        src.train, src.raw_train = read.table, read.raw
        src.notes += read.notes
        src.id_col, src.image_col, src.label_col = read.id_col, read.image_col, read.label_col or "label"
        src.train_label_col = read.label_col
    if test_path is not None:
        src.test, src.test_source = _test_table(test_path, columns, tolerant), test_path.name
        if train_path is None:
            src.id_col = read_table(test_path, _test_columns(test_path, columns), False, tolerant).id_col
    elif not explicit_test and (root / "test").is_dir():
        src.test, src.test_source = table_from_flat_folder(root / "test"), "test/ folder"
        src.notes.append("no test.csv: the images in test/ are the test set")
    if src.sample_submission is not None:
        header = list(read_csv_text(src.sample_submission).columns)
        if len(header) >= 2:
            src.id_col, src.label_col = header[0], header[1]
    return src


def _test_columns(test_path: Path, columns: Columns) -> Columns:
    # the column flags name the training CSV's columns; a test CSV may use the usual names
    present = list(read_csv_text(test_path, CSV_HINT).columns)
    return Columns(
        id=columns.id if columns.id in present else None, image=columns.image if columns.image in present else None
    )


def _test_table(test_path: Path, columns: Columns, tolerant: bool) -> pd.DataFrame:
    table = table_from_csv(test_path, _test_columns(test_path, columns), labelled=False, tolerant=tolerant)
    return table[["id", "path"]]


def _discover_folders(root: Path) -> DataSource:
    train_dir = root / "train" if (root / "train").is_dir() else root
    # in root/<class>/ layouts a sibling test/ folder holds the unlabelled images, not a class
    exclude = frozenset({"test"}) if train_dir == root else frozenset()
    train = table_from_class_folders(train_dir, exclude)
    test_dir = root / "test"
    test = table_from_flat_folder(test_dir) if test_dir.is_dir() else None
    if len(train) == 0 and test is None:
        raise ArtkitError(
            f"{root} has neither train.csv nor class sub-folders",
            "use the Dacon layout (train.csv, test.csv) or root/<class>/*.jpg",
        )
    sample = _file_or_none(root / "sample_submission.csv")
    skipped = class_folders(train_dir, exclude)[1]
    notes = [f"skipped artkit output folder(s), not classes: {', '.join(skipped)}"] if skipped else []
    return DataSource(
        root=root,
        layout="folder",
        train=train if len(train) else None,
        test=test,
        test_source="test/ folder" if test is not None else "none",
        sample_submission=sample,
        notes=notes,
    )


def class_names(labels) -> list[str]:
    """The fixed class order: sorted unique names (Python's code-point order, locale-independent)."""
    return sorted(set(labels))


def paths_outside(table: pd.DataFrame | None, *folders: Path | None) -> list[str]:
    """Image paths of ``table`` that lie outside every one of ``folders`` (absolute paths in a CSV are allowed,
    but worth knowing about)."""
    if table is None:
        return []
    roots = [os.path.join(os.path.realpath(f), "") for f in folders if f is not None]
    return [p for p in table["path"] if p and not any(os.path.realpath(p).startswith(r) for r in roots)]
