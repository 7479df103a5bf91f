"""One discover() serves every command: with train.csv, a test/ folder and no test.csv, every command that
needs a test set takes test/ (v0.1's eda/clean did while predict found none)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import TINY, artkit, make_dacon


@pytest.fixture
def no_test_csv(tmp_path: Path) -> Path:
    data = make_dacon(tmp_path / "data")
    (data / "test.csv").unlink()
    (data / "sample_submission.csv").unlink()  # it names the rows of test.csv
    return data


@pytest.mark.slow
def test_every_command_finds_the_test_folder(no_test_csv: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = no_test_csv
    test_ids = sorted(p.stem for p in (data / "test").glob("*.jpg"))
    artkit("eda", data, "--out", tmp_path / "eda", "--workers", "1")
    eda = json.loads((tmp_path / "eda" / "eda.json").read_text())
    assert eda["dataset"]["test_source"] == "test/ folder" and eda["dataset"]["test_rows"] == len(test_ids)
    artkit("clean", data, "--out", tmp_path / "clean", "--workers", "1")
    clean = json.loads((tmp_path / "clean" / "clean.json").read_text())
    assert clean["scan"]["files"] == 24 + len(test_ids)  # train and test images were scanned
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    artkit("predict", best, data, "-o", tmp_path / "sub.csv")
    assert sorted(pd.read_csv(tmp_path / "sub.csv", dtype=str)["id"]) == test_ids
    artkit("ensemble", best, "--data", data, "-o", tmp_path / "ens.csv")
    assert sorted(pd.read_csv(tmp_path / "ens.csv", dtype=str)["id"]) == test_ids
