"""A competitor's first hour: no dead ends from the README's commands, weights you can carry offline, run
comparison and experiment trackers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from artkit.errors import ArtkitError

from helpers import TINY, artkit, painting

SRC = Path(__file__).resolve().parents[2] / "src"


def test_version():
    from artkit import __version__

    r = artkit("--version")
    assert r.output.strip() == f"artkit {__version__}"


@pytest.mark.slow
def test_models_match_the_way_people_type_and_skip_timm_once_cached(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    r = artkit("models", "effnet")
    assert "efficientnet_b0" in r.output and "letters in order" in r.output
    assert "convnext_tiny" in artkit("models", "convnext_*").output
    assert "efficientnet_b3" in artkit("models", "efficientnet*").output
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); from artkit.models.catalog import find_models; "
        "names = find_models('effnet').names; print(len(names), 'timm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"ARTKIT_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert int(out[0]) > 10 and out[1] == "False"  # answered from the cache, without importing timm


@pytest.mark.slow
def test_a_failed_start_leaves_no_run_folder(dacon: Path, tmp_path: Path):
    r = artkit("train", dacon, "--model", "resnet10t", "--epochs", "1", "--out", tmp_path / "runs", ok=False)
    assert r.exit_code == 2 and "pretrained weights for 'resnet10t'" in r.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    assert (tmp_path / "runs" / "train" / "best.pt").is_file()  # the name was not taken by the failed start


def test_offline_pretrained_fails_in_seconds_with_the_way_out(monkeypatch):
    import timm  # noqa: F401 - imported before the clock starts

    from artkit.models.factory import create_model

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(ArtkitError) as err:
        create_model("resnet10t", 3, pretrained=True)
    assert time.perf_counter() - start < 3 and calls  # the hub was asked once, briefly
    assert "cannot be reached" in err.value.message
    assert "--weights FILE" in err.value.hint and "artkit weights save" in err.value.hint


def test_ensemble_and_predict_say_they_need_the_test_images(dacon: Path, tmp_path: Path, monkeypatch):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(dacon, moved)
    artkit("train", moved, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    monkeypatch.chdir(tmp_path / "runs")  # no data/ here
    r = artkit("predict", best, "-o", "submission.csv", ok=False)
    assert r.exit_code == 2 and "predicting needs the test images" in " ".join(r.output.split())
    shutil.rmtree(moved)  # the folder the checkpoint names is gone: ensemble asks for one
    r = artkit("ensemble", best, "-o", "submission.csv", ok=False)
    assert r.exit_code == 2 and "pass the dataset folder with --data DIR" in " ".join(r.output.split())
    (dacon / "test" / "TEST_00002.jpg").write_bytes(b"not an image")
    r = artkit("predict", best, dacon, "-o", "s.csv", "--workers", "0", ok=False)
    assert r.exit_code == 2 and "TEST_00002.jpg" in r.output and "--skip-bad" not in r.output


def _local_pretrained(monkeypatch) -> None:
    """timm 'pretrained' weights made locally: a seeded model with its own normalisation, no network."""
    import timm

    import artkit.models.factory as factory

    real = timm.create_model

    def create(name, pretrained=False, **kwargs):
        torch.manual_seed(123)
        model = real(name, pretrained=False, **kwargs)
        if pretrained:
            model.pretrained_cfg = {
                **model.pretrained_cfg,
                "mean": (0.3, 0.3, 0.3),
                "std": (0.2, 0.2, 0.2),
                "input_size": (3, 48, 48),
            }
        return model

    monkeypatch.setattr(timm, "create_model", create)
    monkeypatch.setattr(factory, "check_pretrained_available", lambda name: None)


@pytest.mark.slow
def test_weights_save_show_and_train_offline(dacon: Path, tmp_path: Path, monkeypatch):
    _local_pretrained(monkeypatch)
    out = tmp_path / "w" / "r10.pt"
    artkit("weights", "save", "resnet10t", "-o", out)
    saved = torch.load(out, weights_only=True)
    assert saved["model"] == "resnet10t" and saved["pretrained_cfg"]["mean"] == [0.3, 0.3, 0.3]
    shown = " ".join(artkit("weights", "show", out).output.split())
    assert "resnet10t" in shown and "[0.3, 0.3, 0.3] / [0.2, 0.2, 0.2]" in shown and "48 px" in shown
    monkeypatch.undo()  # training needs no network and no pretend timm
    artkit(
        "train",
        dacon,
        "--weights",
        out,
        "--epochs",
        "1",
        "--workers",
        "0",
        "--batch-size",
        "8",
        "--out",
        tmp_path / "runs",
    )
    ckpt = torch.load(tmp_path / "runs" / "train" / "best.pt", weights_only=True)
    assert ckpt["model"] == "resnet10t" and ckpt["mean"] == [0.3] * 3 and ckpt["img_size"] == 48
    r = artkit("train", dacon, "--weights", out, "--model", "resnet18", "--out", tmp_path / "r2", ok=False)
    assert r.exit_code == 2 and "holds weights of resnet10t, not resnet18" in r.output
    state = tmp_path / "plain.pt"
    torch.save(saved["state_dict"], state)
    artkit("weights", "save", "resnet10t", "--from", state, "-o", tmp_path / "conv.pt")
    assert "converted from plain.pt" in artkit("weights", "show", tmp_path / "conv.pt").output


@pytest.mark.slow
def test_eval_shows_the_worst_classes_and_all_on_request(tmp_path: Path):
    import numpy as np

    rng = np.random.default_rng(0)
    for k in range(12):
        folder = tmp_path / "data" / f"class{k:02d}"
        folder.mkdir(parents=True)
        for i in range(3):
            painting(rng, k).save(folder / f"{k}_{i}.png")
    artkit("train", tmp_path / "data", *TINY, "--epochs", "1", "--val-fraction", "0.5", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    r = artkit("eval", best, "--data", tmp_path / "data")
    assert "the 10 worst of 12" in r.output and r.output.count("class") >= 10
    r = artkit("eval", best, "--data", tmp_path / "data", "--all")
    assert "per class, all" in r.output
    r = artkit("predict", best, "--csv", _csv_of(tmp_path), "-o", tmp_path / "p.csv", "--tta", "hflip")
    assert f"checkpoint:{best},tta:hflip" in "".join(r.output.split())


def _csv_of(tmp_path: Path) -> Path:
    rows = [(p.stem, str(p)) for p in sorted((tmp_path / "data").rglob("*.png"))[:4]]
    pd.DataFrame(rows, columns=["id", "img_path"]).to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


@pytest.mark.slow
def test_runs_compares_every_run(dacon: Path, tmp_path: Path):
    out = tmp_path / "runs"
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", out, "--name", "a")
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", out, "--name", "b", "--lr", "0.002")
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", out, "--name", "kf", "--folds", "2")
    (out / "b" / "summary.json").unlink()  # as a run killed after its last epoch
    r = artkit("runs", out, "--sort", "score", "--csv", tmp_path / "runs.csv")
    assert "finished" in r.output and "interrupted" in r.output
    table = pd.read_csv(tmp_path / "runs.csv").set_index("name")
    assert set(table.index) == {"a", "b", "kf"}
    assert table.loc["kf", "score_kind"] == "CV macro-F1" and table.loc["kf", "epochs"] == "2/2 folds"
    assert table.loc["b", "status"] == "interrupted" and "lr=0.002" in table.loc["b", "differs"]
    assert "folds=2" in table.loc["kf", "differs"] and "lr=0.01" in table.loc["a", "differs"]
    # the k-fold parent keeps aug=auto, its folds and the single runs the value it resolved to: no difference
    assert not any("aug=" in d or "sampler=" in d or "None" in d for d in table["differs"].fillna(""))
    assert "test_efficientnet" in r.output and "size" in r.output  # model names whole; the size column


@pytest.mark.slow
def test_runs_shows_which_data_a_run_trained_on(dacon: Path, tmp_path: Path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(dacon, other)
    out = tmp_path / "runs"
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", out, "--name", "a")
    artkit("train", other, *TINY, "--epochs", "1", "--out", out, "--name", "b")
    artkit("runs", out, "--csv", tmp_path / "runs.csv")
    table = pd.read_csv(tmp_path / "runs.csv").set_index("name")
    assert f"data={other}" in table.loc["b", "differs"] and f"data={dacon}" in table.loc["a", "differs"]


@pytest.mark.slow
def test_loggers_write_to_tensorboard_and_mlflow(dacon: Path, tmp_path: Path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    artkit("train", dacon, *TINY, "--epochs", "2", "--out", tmp_path / "runs", "--logger", "tensorboard,mlflow")
    results = pd.read_csv(tmp_path / "runs" / "train" / "results.csv")
    client = MlflowClient(tracking_uri=store)
    [run] = client.search_runs([client.get_experiment_by_name("artkit").experiment_id])
    history = client.get_metric_history(run.info.run_id, "val_macro_f1")
    assert [m.value for m in history] == pytest.approx(results["val_macro_f1"].tolist())
    assert run.data.params["lr"] == "0.01" and run.info.status == "FINISHED"
    events = EventAccumulator(str(tmp_path / "runs" / "train" / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("train_loss")] == pytest.approx(results["train_loss"].tolist())


def test_a_missing_logger_extra_is_one_message(dacon: Path, tmp_path: Path, monkeypatch):
    import importlib

    real = importlib.import_module

    def without_mlflow(name, *args, **kwargs):
        if name == "mlflow":
            raise ImportError("No module named 'mlflow'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", without_mlflow)
    r = artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "runs", "--logger", "mlflow", ok=False)
    assert r.exit_code == 2 and "pip install 'artkit[mlflow]'" in r.output
