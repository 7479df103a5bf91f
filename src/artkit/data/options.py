"""Where a command's data is: option groups shared by every command's config (see :mod:`artkit.options`)."""

from __future__ import annotations

from dataclasses import dataclass

from artkit.options import option

DATA_PANEL = "Data"


@dataclass(kw_only=True)
class Columns:
    """Column names of a CSV layout; None means detect from common names."""

    id: str | None = None
    image: str | None = None
    label: str | None = None


@dataclass(kw_only=True)
class DataFolder:
    data: str = option(
        "data",
        "Dataset folder: train.csv/test.csv (Dacon layout) or one sub-folder per class.",
        argument=True,
        panel=DATA_PANEL,
        reads=True,
    )


@dataclass(kw_only=True)
class Tables:
    train_csv: str | None = option(
        None,
        "Labelled CSV (id,img_path,label) instead of DATA/train.csv, e.g. "
        "clean/train_clean.csv; image paths are relative to the CSV.",
        panel=DATA_PANEL,
        reads=True,
    )
    test_csv: str | None = option(
        None, "Test CSV (id,img_path) instead of DATA/test.csv (else DATA/test/).", panel=DATA_PANEL, reads=True
    )


@dataclass(kw_only=True)
class ImagesCsv:
    csv: str | None = option(
        None,
        "A CSV of the images to run on (id,img_path, and a label column to score) "
        "instead of the data folder's test set.",
        panel=DATA_PANEL,
        reads=True,
    )


@dataclass(kw_only=True)
class ColumnNames:
    id_col: str | None = option(None, "Id column of the CSVs (default: id, image_id, ...).", panel=DATA_PANEL)
    image_col: str | None = option(
        None, "Image path column (default: img_path, image_path, path, ...).", panel=DATA_PANEL
    )
    label_col: str | None = option(None, "Label column (default: artist, label, class, ...).", panel=DATA_PANEL)

    @property
    def columns(self) -> Columns:
        return Columns(id=self.id_col, image=self.image_col, label=self.label_col)
