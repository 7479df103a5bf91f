"""`artkit demo` (the README's first command, shortened) and `artkit models`."""

from pathlib import Path

import pandas as pd
import pytest

from helpers import artkit


@pytest.mark.slow
def test_demo_writes_data_run_and_a_scored_submission(tmp_path: Path):
    out = tmp_path / "demo"
    r = artkit("demo", "--out", out, "--epochs", "1", "--img-size", "32", "--workers", "0")
    data, run = out / "data", out / "runs" / "demo"
    for path in (
        data / "train.csv",
        data / "test.csv",
        data / "sample_submission.csv",
        run / "best.pt",
        run / "results.csv",
        run / "eval_best" / "metrics.json",
        out / "submission.csv",
        out / "submission.npz",
    ):
        assert path.is_file(), path
        assert str(path.parent) in r.output.replace("\n", "")  # every output's place is printed
    train = pd.read_csv(data / "train.csv")
    counts = train["artist"].value_counts()
    assert list(train.columns) == ["id", "img_path", "artist"] and counts.max() > 2 * counts.min()  # imbalanced
    sub = pd.read_csv(out / "submission.csv", dtype=str)
    assert sub["id"].tolist() == pd.read_csv(data / "test.csv", dtype=str)["id"].tolist()
    assert "test macro-F1" in r.output


def test_models_lists_timm_names_by_pattern():
    r = artkit("models", "resnet10")
    assert "resnet10t" in r.output and "efficientnet" not in r.output
    r = artkit("models", "efficientnet_lite*")
    assert "efficientnet_lite0" in r.output and "resnet" not in r.output
