from pathlib import Path

import pandas as pd
import pytest

from artkit.data.layout import class_names, discover
from artkit.data.options import Columns
from artkit.errors import ArtkitError

from helpers import CLASSES


def test_dacon_layout_reads_train_test_and_sample(dacon: Path):
    src = discover(dacon)
    assert src.layout == "csv"
    assert len(src.train) == 24 and set(src.train["label"]) == set(CLASSES)
    assert all(Path(p).is_file() for p in src.train["path"])
    assert src.test["id"].tolist() == pd.read_csv(dacon / "test.csv")["id"].tolist()
    assert (src.id_col, src.label_col) == ("id", "artist")


def test_unicode_labels_round_trip_exactly(dacon: Path):
    labels = set(discover(dacon).train["label"])
    assert "Albrecht Dürer" in labels and "Albrecht Du rer" in labels


def test_configurable_columns_and_csv_paths(dacon: Path, tmp_path: Path):
    raw = pd.read_csv(dacon / "train.csv").rename(columns={"id": "key", "img_path": "file", "artist": "painter"})
    raw.to_csv(dacon / "renamed.csv", index=False)
    src = discover(dacon, train_csv=dacon / "renamed.csv", columns=Columns(id="key", image="file", label="painter"))
    assert len(src.train) == 24 and src.train["id"].iloc[0] == "0"


def test_missing_column_names_it_and_the_flag(dacon: Path):
    with pytest.raises(ArtkitError) as err:
        discover(dacon, columns=Columns(label="painter"))
    assert "painter" in err.value.message and "--label-col" in err.value.hint


def test_empty_label_is_a_clear_error(dacon: Path):
    df = pd.read_csv(dacon / "train.csv", dtype=str)
    df.loc[3, "artist"] = ""
    df.to_csv(dacon / "train.csv", index=False)
    with pytest.raises(ArtkitError, match="empty label"):
        discover(dacon)


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ArtkitError, match="not found"):
        discover(tmp_path / "nope")


def test_folder_per_class_with_train_and_test(folders: Path):
    src = discover(folders)
    assert src.layout == "folder"
    assert sorted(set(src.train["label"])) == ["cat", "dog"] and len(src.train) == 10
    assert src.test["id"].tolist() == ["t0", "t1", "t2", "t3"]


def test_flat_folder_per_class_ignores_test_dir(tmp_path: Path, folders: Path):
    root = folders / "train"
    (root / "test").mkdir()  # not a class when it is a sibling of class folders at the root
    src = discover(root)
    assert sorted(set(src.train["label"])) == ["cat", "dog"]


def test_class_order_is_sorted_and_stable():
    assert class_names(["b", "Ä", "a", "b"]) == ["a", "b", "Ä"]
