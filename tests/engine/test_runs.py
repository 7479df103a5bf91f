"""Run folders and the files that record a run; k-fold's out-of-fold file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artkit.engine.kfold import write_oof
from artkit.engine.runs import check_run_name, new_run_dir, read_results, run_finished, write_results, write_summary
from artkit.errors import ArtkitError
from artkit.writer import save_npz


def test_run_folders_are_numbered_never_reused(tmp_path: Path):
    assert new_run_dir(tmp_path, None) == tmp_path / "train"
    assert new_run_dir(tmp_path, None) == tmp_path / "train2"
    assert new_run_dir(tmp_path, "b3") == tmp_path / "b3"
    assert new_run_dir(tmp_path, "b3") == tmp_path / "b32"
    for bad in ("../x", "a/b", "..", ".", ""):
        with pytest.raises(ArtkitError, match="plain folder name"):
            check_run_name(bad)


def test_results_round_trip_and_finished_state(tmp_path: Path):
    rows = [
        {
            "epoch": e,
            "lr": 0.1,
            "train_loss": 1.0 / e,
            "val_loss": float("nan"),
            "val_acc": 0.5,
            "val_macro_f1": 0.4,
            "seconds": 1.0,
            "images_per_s": 10.0,
        }
        for e in (1, 2)
    ]
    write_results(tmp_path / "results.csv", rows)
    back = read_results(tmp_path / "results.csv")
    assert [r["epoch"] for r in back] == [1, 2] and back[1]["train_loss"] == 0.5 and np.isnan(back[0]["val_loss"])
    assert not run_finished(tmp_path, 2)
    write_summary(tmp_path, {"finished": True, "epochs_run": 2, "stopped_early": False})
    assert run_finished(tmp_path, 2) and not run_finished(tmp_path, 3)
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_oof_gathers_folds_in_split_order(tmp_path: Path):
    classes = ["a", "b"]
    ids = ["r0", "r1", "r2", "r3"]
    (tmp_path / "fold0").mkdir()
    (tmp_path / "fold1").mkdir()
    pd.DataFrame({"id": ids}).to_csv(tmp_path / "fold0" / "split.csv", index=False)
    # fold 1 validates r3 and r0 (right), fold 0 validates r2 (right) and r1 (wrong)
    parts = {0: (["r2", "r1"], [[0.0, 2.0], [3.0, 0.0]], [1, 1]), 1: (["r3", "r0"], [[0.0, 1.0], [1.0, 0.0]], [1, 0])}
    for fold, (fold_ids, logits, y) in parts.items():
        save_npz(
            tmp_path / f"fold{fold}" / "val_predictions.npz",
            ids=np.array(fold_ids),
            classes=np.array(classes),
            logits=np.array(logits, np.float32),
            targets=np.array(y),
        )
    cv = write_oof(tmp_path, 2)
    oof = pd.read_csv(tmp_path / "oof.csv", dtype={"id": str})
    assert oof["id"].tolist() == ids and oof["label"].tolist() == ["a", "b", "b", "b"]
    assert np.allclose(oof[classes].sum(axis=1), 1.0)
    assert cv["rows"] == 4 and cv["oof_acc"] == 0.75
    assert [f["val_acc"] for f in cv["folds"]] == [0.5, 1.0]
    (tmp_path / "fold1" / "val_predictions.npz").unlink()
    with pytest.raises(ArtkitError, match="fold 1"):
        write_oof(tmp_path, 2)
