"""eval says which TTA its score used, and why it differs from the run's own score on the same rows."""

from pathlib import Path

import pytest

from artkit.inference.evaluate import differs_from_run

from helpers import TINY, artkit, make_dacon


@pytest.mark.slow
def test_the_score_line_names_its_tta(dacon: Path, tmp_path: Path):
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    r = artkit("eval", tmp_path / "train" / "best.pt")
    assert "(tta hflip)" in r.output
    r = artkit("eval", tmp_path / "train" / "best.pt", "--tta", "none", "--out", tmp_path / "plain")
    assert "(tta none)" in r.output and "the run scored" not in r.output  # the run's own score, reproduced


def test_a_score_that_differs_from_the_runs_says_why():
    ckpt = {"metrics": {"val_macro_f1": 0.0590}, "epoch": 3}
    note = differs_from_run(ckpt, 0.0454, "hflip")
    assert note == (
        "the run scored macro-F1 0.0590 on these rows at epoch 3 without TTA; this score uses --tta hflip "
        "(--tta none to compare)"
    )
    assert differs_from_run(ckpt, 0.0590, "hflip") is None
    assert differs_from_run({"metrics": {}}, 0.5, "none") is None


@pytest.mark.slow
def test_predict_scores_a_labelled_csv_in_its_own_order(dacon: Path, tmp_path: Path):
    import pandas as pd

    artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    train = pd.read_csv(dacon / "train.csv", dtype=str)
    labelled = train.iloc[::-1].head(6).copy()  # an order of its own, and a label column
    labelled["img_path"] = [str(dacon / p) for p in labelled["img_path"]]
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    best = tmp_path / "train" / "best.pt"
    # the data folder given as well: its sample_submission.csv does not judge the CSV's rows
    r = artkit("predict", best, dacon, "--csv", tmp_path / "labelled.csv", "-o", tmp_path / "sub.csv")
    out = " ".join(r.output.split())
    assert "macro-F1" in out and "on the labels of" in out and "(tta hflip)" in out
    sub = pd.read_csv(tmp_path / "sub.csv", dtype=str)
    assert sub["id"].tolist() == labelled["id"].tolist()


def test_evals_grad_cam_panels_run_on_evals_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """They ran on 'auto' (GPU 0) whatever --device said: `eval --device cpu` still used the GPU."""
    from artkit.engine.device import Runtime

    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path)
    asked = []
    create = Runtime.create.__func__

    def recording(cls, device="auto", *args, **kwargs):
        asked.append(device)
        return create(cls, device, *args, **kwargs)

    monkeypatch.setattr(Runtime, "create", classmethod(recording))
    artkit("eval", tmp_path / "train" / "best.pt", "--device", "cpu", "--out", tmp_path / "ev")
    assert list((tmp_path / "ev").glob("**/loss_*.png")) and asked and set(asked) == {"cpu"}
