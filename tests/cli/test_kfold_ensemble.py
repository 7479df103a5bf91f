"""k-fold training, OOF, resume of an interrupted k-fold run, TTA and `artkit ensemble`, end to end."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from artkit.inference.ensemble import combine

from helpers import TINY, artkit

runner = CliRunner()


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory):
    from helpers import make_dacon

    root = tmp_path_factory.mktemp("kf")
    data = make_dacon(root / "data")
    artkit("train", "--data", data, *TINY, "--epochs", "1", "--folds", "3", "--out", root / "runs", "--name", "kf")
    return data, root / "runs" / "kf"


@pytest.mark.slow
def test_kfold_writes_three_runs_and_oof_covering_every_row_once(kfold_run):
    data, run = kfold_run
    for i in range(3):
        for name in ("best.pt", "last.pt", "results.csv", "config.yaml", "split.csv"):
            assert (run / f"fold{i}" / name).is_file()
    oof = pd.read_csv(run / "oof.csv", dtype={"id": str})
    train = pd.read_csv(data / "train.csv", dtype=str)
    assert oof["id"].tolist() == train["id"].tolist()  # every row exactly once, in training order
    assert list(oof.columns[:2]) == ["id", "label"] and len(oof.columns) == 2 + 3
    assert np.allclose(oof.iloc[:, 2:].sum(axis=1), 1.0, atol=1e-4)
    cv = json.loads((run / "cv.json").read_text())
    assert len(cv["folds"]) == 3 and 0 <= cv["cv_macro_f1_mean"] <= 1 and cv["rows"] == len(train)


@pytest.mark.slow
def test_fold_ensemble_and_equivalences(kfold_run, tmp_path: Path):
    data, run = kfold_run
    ckpts = [run / f"fold{i}" / "best.pt" for i in range(3)]
    r = artkit("ensemble", *ckpts, "--data", data, "-o", tmp_path / "ens.csv")
    rows = [line.strip() for line in r.output.splitlines()]
    # members are named relative to their common folder, so a narrow table still tells them apart
    assert all(any(row.startswith(f"fold{i}/best.pt") for row in rows) for i in range(3))
    sub = pd.read_csv(tmp_path / "ens.csv", dtype=str)
    assert sub["id"].tolist() == pd.read_csv(data / "test.csv", dtype=str)["id"].tolist()

    # one checkpoint with itself equals predict
    artkit("predict", ckpts[0], "--data", data, "-o", tmp_path / "p0.csv")
    artkit("ensemble", ckpts[0], ckpts[0], "--data", data, "-o", tmp_path / "self.csv")
    assert pd.read_csv(tmp_path / "self.csv").equals(pd.read_csv(tmp_path / "p0.csv"))
    with np.load(tmp_path / "self.npz") as a, np.load(tmp_path / "p0.npz") as b:
        assert np.allclose(a["logits"], b["logits"], atol=1e-6)

    # logits files plus checkpoints give the same submission as the checkpoints alone
    artkit("predict", ckpts[1], "--data", data, "-o", tmp_path / "p1.csv")
    artkit("ensemble", tmp_path / "p0.npz", tmp_path / "p1.npz", ckpts[2], "--data", data, "-o", tmp_path / "mixed.csv")
    assert pd.read_csv(tmp_path / "mixed.csv").equals(sub)
    with np.load(tmp_path / "mixed.npz") as a, np.load(tmp_path / "ens.npz") as b:
        assert np.allclose(a["logits"], b["logits"], atol=1e-5)

    # a k-fold run folder is a member too (its folds' mean)
    artkit("ensemble", run, "--data", data, "-o", tmp_path / "dir.csv")
    assert pd.read_csv(tmp_path / "dir.csv").equals(sub)

    artkit("predict", ckpts[2], "--data", data, "-o", tmp_path / "p2.csv")
    members = []
    for k in range(3):
        with np.load(tmp_path / f"p{k}.npz") as z:
            members.append(z["logits"])
    for mode in ("prob", "geometric"):
        artkit("ensemble", *ckpts, "--data", data, "-o", tmp_path / f"{mode}.csv", "--mode", mode, "--weights", "2,1,1")
        expected = combine(members, np.array([2.0, 1.0, 1.0]), mode)
        with np.load(tmp_path / f"{mode}.npz") as z:
            assert np.allclose(z["logits"], expected, atol=1e-5), mode
            written = pd.read_csv(tmp_path / f"{mode}.csv", dtype=str)
            assert written["artist"].tolist() == [str(z["classes"][i]) for i in expected.argmax(1)]


def test_ensemble_refusals_without_traceback(kfold_run, tmp_path: Path):
    data, run = kfold_run
    artkit("predict", run / "fold0" / "best.pt", "--data", data, "-o", tmp_path / "p.csv")
    with np.load(tmp_path / "p.npz") as z:
        ids, classes, logits = z["ids"], z["classes"], z["logits"]
    np.savez(
        tmp_path / "other_classes.npz",
        ids=ids,
        classes=np.array(["Albrecht Dürer", "Pablo Picasso", "Vincent van Gogh"]),
        logits=logits,
    )
    np.savez(
        tmp_path / "other_ids.npz", ids=np.array([f"X{i}" for i in range(len(ids))]), classes=classes, logits=logits
    )
    np.savez(tmp_path / "reordered.npz", ids=ids, classes=classes[::-1].copy(), logits=logits[:, ::-1].copy())
    r = artkit(
        "ensemble",
        tmp_path / "p.npz",
        tmp_path / "other_classes.npz",
        "--data",
        data,
        "-o",
        tmp_path / "x.csv",
        ok=False,
    )
    assert (
        r.exit_code == 2
        and "Pablo Picasso" in r.output
        and "Albrecht Du rer" in r.output
        and "Traceback" not in r.output
    )
    r = artkit("ensemble", tmp_path / "other_ids.npz", "--data", data, "-o", tmp_path / "x.csv", ok=False)
    assert r.exit_code == 2 and "ids" in r.output and "Traceback" not in r.output
    # a member whose class order differs is aligned by name
    artkit("ensemble", tmp_path / "p.npz", tmp_path / "reordered.npz", "--data", data, "-o", tmp_path / "al.csv")
    assert pd.read_csv(tmp_path / "al.csv").equals(pd.read_csv(tmp_path / "p.csv"))


def test_tta_views_in_predict_and_ensemble(kfold_run, tmp_path: Path):
    data, run = kfold_run
    ck = run / "fold0" / "best.pt"
    artkit("predict", ck, "--data", data, "-o", tmp_path / "plain.csv")
    with np.load(tmp_path / "plain.npz") as z:
        plain = z["logits"]
    test_ids = pd.read_csv(data / "test.csv", dtype=str)["id"].tolist()
    for tta in ("vflip", "five-crop", "multi-scale", "hflip,five-crop"):
        artkit("predict", ck, "--data", data, "-o", tmp_path / "t.csv", "--tta", tta)
        assert pd.read_csv(tmp_path / "t.csv", dtype=str)["id"].tolist() == test_ids
        with np.load(tmp_path / "t.npz") as z:
            assert z["logits"].shape == plain.shape and not np.allclose(z["logits"], plain), tta  # views were used
    artkit("predict", ck, "--data", data, "-o", tmp_path / "h.csv", "--tta", "hflip")
    artkit("ensemble", ck, "--data", data, "-o", tmp_path / "e.csv", "--tta", "hflip")
    with np.load(tmp_path / "h.npz") as a, np.load(tmp_path / "e.npz") as b:
        assert np.allclose(a["logits"], b["logits"], atol=1e-5)  # ensemble passes --tta to its members
    r = artkit("predict", ck, "--data", data, "--tta", "rotate", ok=False)
    assert r.exit_code == 2 and "rotate" in r.output


@pytest.mark.slow
def test_labelled_csv_scores_members_and_fit_weights(kfold_run, tmp_path: Path):
    data, run = kfold_run
    labelled = data / "holdout.csv"
    pd.read_csv(data / "train.csv").head(12).to_csv(labelled, index=False)
    r = artkit(
        "ensemble",
        run / "fold0" / "best.pt",
        run / "fold1" / "best.pt",
        "--csv",
        labelled,
        "--data",
        data,
        "-o",
        tmp_path / "h.csv",
    )
    assert "ensemble macro-F1" in r.output
    r = artkit("ensemble", run, run, "--fit-weights", "--data", data, "-o", tmp_path / "fw.csv")
    assert "fitted weights" in r.output
    # k-fold members without a labelled --csv: each member's OOF score and the ensemble's
    cv = json.loads((run / "cv.json").read_text())
    r = artkit("ensemble", run, "--data", data, "-o", tmp_path / "oof.csv")
    assert f"ensemble OOF macro-F1 {cv['oof_macro_f1']:.4f}" in r.output
    r = artkit(
        "ensemble", run / "fold0" / "best.pt", "--fit-weights", "--data", data, "-o", tmp_path / "z.csv", ok=False
    )
    assert r.exit_code == 2 and "k-fold run" in r.output


@pytest.mark.slow
def test_interrupted_kfold_resumes_keeping_finished_folds(tmp_path: Path, monkeypatch):
    from artkit.cli.progress import RichReporter

    from helpers import make_dacon

    data = make_dacon(tmp_path / "data")
    calls = {"n": 0}
    original = RichReporter.epoch_end

    def stop_in_fold_1(self, row, improved):  # fold 0 finishes (2 epochs), fold 1 stops after its first
        original(self, row, improved)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(RichReporter, "epoch_end", stop_in_fold_1)
    args = ["--data", data, *TINY, "--epochs", "2", "--folds", "2", "--out", tmp_path / "runs", "--name", "kf"]
    r = artkit("train", *args, ok=False)
    assert r.exit_code == 130
    run = tmp_path / "runs" / "kf"
    fold0_best = (run / "fold0" / "best.pt").read_bytes()
    monkeypatch.setattr(RichReporter, "epoch_end", original)
    r = artkit("train", "--resume", run)
    assert "fold 0 already finished: kept" in r.output and "resuming after epoch 1" in r.output
    assert (run / "fold0" / "best.pt").read_bytes() == fold0_best
    assert len(pd.read_csv(run / "fold1" / "results.csv")) == 2
    assert len(pd.read_csv(run / "oof.csv")) == 24


def test_full_trains_on_every_row(dacon: Path, tmp_path: Path):
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--full", "--out", tmp_path)
    split = pd.read_csv(tmp_path / "train" / "split.csv")
    assert (split["split"] == "train").all() and (tmp_path / "train" / "best.pt").is_file()
    r = artkit("eval", tmp_path / "train" / "best.pt", ok=False)
    assert r.exit_code == 2 and "--full" in r.output


def test_clean_consumes_the_kfold_oof(kfold_run, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    data, run = kfold_run
    artkit("clean", data, "--out", tmp_path / "clean", "--oof", run / "oof.csv", "--workers", "1")
    issues = pd.read_csv(tmp_path / "clean" / "issues.csv")
    assert set(issues.columns) >= {"id", "file", "issue", "detail", "action"}
    assert (tmp_path / "clean" / "train_clean.csv").is_file()


@pytest.mark.slow
def test_ensemble_with_no_data_flag_uses_the_members_data_folder(kfold_run, tmp_path: Path, monkeypatch):
    """The mission's command as written: `artkit ensemble ckpts/*.pt -o submission.csv`, nothing else."""
    data, run = kfold_run
    monkeypatch.chdir(tmp_path)  # no ./data here: the old default would fail with "data folder not found: data"
    ckpts = [run / f"fold{i}" / "best.pt" for i in range(3)]
    r = artkit("ensemble", *ckpts, "-o", "submission.csv")
    assert f"test set: {data}" in " ".join(r.output.split())
    sub = pd.read_csv(tmp_path / "submission.csv", dtype=str)
    artkit("ensemble", *ckpts, "--data", data, "-o", "explicit.csv")
    assert sub.equals(pd.read_csv(tmp_path / "explicit.csv", dtype=str))  # the same as naming the folder
    assert sub["id"].tolist() == pd.read_csv(data / "sample_submission.csv", dtype=str).iloc[:, 0].tolist()
    artkit("ensemble", run, "-o", "kfold.csv")  # a k-fold run folder names its data in config.yaml
    npz = tmp_path / "explicit.npz"
    r = artkit("ensemble", npz, npz, "-o", "logits.csv", ok=False)  # logits files name no data folder
    assert r.exit_code == 2 and "pass the dataset folder with --data DIR" in " ".join(r.output.split())
