"""End-to-end CLI tests on tiny synthetic data: train → eval → predict, resume, config, errors."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import TINY, artkit


@pytest.mark.slow
def test_train_eval_predict_end_to_end(dacon: Path, tmp_path: Path):
    out = tmp_path / "runs"
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "2", "--out", out, "--aug", "crop")
    run = out / "train"
    for name in ("config.yaml", "results.csv", "best.pt", "last.pt", "split.csv", "curves.png", "confusion_matrix.png"):
        assert (run / name).is_file(), name
    results = pd.read_csv(run / "results.csv")
    assert list(results.columns) == [
        "epoch",
        "lr",
        "train_loss",
        "val_loss",
        "val_acc",
        "val_macro_f1",
        "seconds",
        "images_per_s",
    ]
    assert len(results) == 2 and "best" in r.output

    r = artkit("eval", run / "best.pt")
    metrics = json.loads((run / "eval_best" / "metrics.json").read_text())
    assert {"acc", "macro_f1", "weighted_f1", "per_class", "most_confused"} <= set(metrics)
    assert metrics["rows"] == (pd.read_csv(run / "split.csv")["split"] == "val").sum()
    assert (run / "eval_best" / "confusion_matrix_normalized.png").is_file()

    sub = tmp_path / "sub" / "submission.csv"
    artkit("predict", run / "best.pt", "--data", dacon, "-o", sub, "--tta", "hflip")
    written = pd.read_csv(sub, dtype=str)
    test = pd.read_csv(dacon / "test.csv", dtype=str)
    assert written["id"].tolist() == test["id"].tolist()  # exactly the test.csv order
    assert list(written.columns) == ["id", "artist"]  # header as in sample_submission.csv
    assert set(written["artist"]) <= {"Albrecht Dürer", "Albrecht Du rer", "Vincent van Gogh"}
    with np.load(sub.with_suffix(".npz"), allow_pickle=False) as z:
        assert z["ids"].tolist() == test["id"].tolist() and z["logits"].dtype == np.float32
        assert z["logits"].shape == (len(test), 3)
        assert [z["classes"][i] for i in z["logits"].argmax(1)] == written["artist"].tolist()


@pytest.mark.slow
def test_malloc_setting_changes_no_number(dacon: Path, tmp_path: Path):
    """artkit's malloc setting (freed memory kept) changes where tensors live, never what they hold: two runs of one
    seed, one with glibc's own settings, give the same losses and the same weights."""
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    runs = {}
    for malloc in ("system", "artkit"):
        env = {k: v for k, v in os.environ.items() if k != "ARTKIT_MALLOC"}
        if malloc == "system":
            env["ARTKIT_MALLOC"] = "system"
        cmd = [sys.executable, "-m", "artkit", "train", "--data", str(dacon), *map(str, TINY), "--epochs", "2"]
        cmd += ["--seed", "3", "--out", str(tmp_path / "runs"), "--name", malloc, "--aug", "light"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        runs[malloc] = tmp_path / "runs" / malloc
        kept = "freed memory is kept for the next step" in " ".join(done.stdout.split())
        assert kept == (malloc == "artkit" and glibc)  # the header says which allocator setting ran
    cols = ["train_loss", "val_loss", "val_acc", "val_macro_f1"]
    first, second = (pd.read_csv(run / "results.csv")[cols] for run in runs.values())
    pd.testing.assert_frame_equal(first, second)
    weights = [torch.load(run / "last.pt", weights_only=True)["state_dict"] for run in runs.values()]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_an_unknown_malloc_setting_is_one_message(dacon: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ARTKIT_MALLOC", "off")
    monkeypatch.setattr("artkit.system._malloc_tuned", None)  # this process may have made its choice already
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path, ok=False)
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "ARTKIT_MALLOC='off' is not a malloc setting" in out and "Traceback" not in out
    assert "ARTKIT_MALLOC=system" in out and not (tmp_path / "train" / "last.pt").exists()


@pytest.mark.slow
def test_same_seed_same_results_and_resume_equals_uninterrupted(dacon: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "runs"
    common = [
        "--data",
        dacon,
        *TINY,
        "--out",
        out,
        "--seed",
        "7",
        "--aug",
        "light",
        "--ema",
        "--ema-decay",
        "0.9",
        "--layer-decay",
        "0.8",
    ]  # several parameter groups must resume too
    artkit("train", *common, "--epochs", "3", "--name", "full")
    artkit("train", *common, "--epochs", "3", "--name", "again")
    full = pd.read_csv(out / "full" / "results.csv")
    again = pd.read_csv(out / "again" / "results.csv")
    cols = ["train_loss", "val_loss", "val_acc", "val_macro_f1", "lr"]
    pd.testing.assert_frame_equal(full[cols], again[cols])

    from artkit.cli.progress import RichReporter

    original = RichReporter.epoch_end

    def interrupt_after_first(self, row, improved):  # Ctrl-C right after epoch 1 was saved
        original(self, row, improved)
        raise KeyboardInterrupt

    monkeypatch.setattr(RichReporter, "epoch_end", interrupt_after_first)
    r = artkit("train", *common, "--epochs", "3", "--name", "part", ok=False)
    assert r.exit_code == 130 and len(pd.read_csv(out / "part" / "results.csv")) == 1
    assert f"continue with: artkit train --resume {out / 'part'}" in " ".join(r.output.split())
    monkeypatch.setattr(RichReporter, "epoch_end", original)
    r = artkit("train", "--resume", out / "part")
    assert "resuming after epoch 1" in r.output
    resumed = pd.read_csv(out / "part" / "results.csv")
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    a = torch.load(out / "full" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "part" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_freeze_epochs_train_only_the_classifier_then_everything(dacon: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "runs"
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", out, "--name", "start")
    start = torch.load(out / "start" / "best.pt", weights_only=True)["state_dict"]

    from artkit.cli.progress import RichReporter

    original = RichReporter.epoch_end

    def interrupt_after_first(self, row, improved):
        original(self, row, improved)
        raise KeyboardInterrupt

    monkeypatch.setattr(RichReporter, "epoch_end", interrupt_after_first)
    args = [
        "--data",
        dacon,
        *TINY,
        "--epochs",
        "2",
        "--freeze-epochs",
        "1",
        "--out",
        out,
        "--name",
        "ft",
        "--weights",
        out / "start" / "best.pt",
    ]
    assert artkit("train", *args, ok=False).exit_code == 130
    frozen = torch.load(out / "ft" / "last.pt", weights_only=True)["state_dict"]
    backbone = [k for k in start if not k.startswith("classifier.")]
    assert any("running_mean" in k for k in backbone)
    assert all(torch.equal(start[k], frozen[k]) for k in backbone)  # weights and BatchNorm statistics kept
    assert not torch.equal(start["classifier.weight"], frozen["classifier.weight"])

    monkeypatch.setattr(RichReporter, "epoch_end", original)
    artkit("train", "--resume", out / "ft")  # epoch 2 trains everything
    tuned = torch.load(out / "ft" / "last.pt", weights_only=True)["state_dict"]
    assert not torch.equal(frozen["conv_stem.weight"], tuned["conv_stem.weight"])
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "2", "--freeze-epochs", "2", "--out", out, ok=False)
    assert r.exit_code == 2 and "--freeze-epochs" in r.output


@pytest.mark.slow
def test_resume_can_extend_epochs_but_not_change_the_recipe(dacon: Path, tmp_path: Path):
    out = tmp_path / "runs"
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", out)
    r = artkit("train", "--resume", out / "train", "--epochs", "1", ok=False)
    assert r.exit_code == 2 and "already finished" in r.output
    r = artkit("train", "--resume", out / "train", "--epochs", "2", "--lr", "0.5", ok=False)
    assert r.exit_code == 2 and "lr" in r.output
    artkit("train", "--resume", out / "train", "--epochs", "2")
    assert len(pd.read_csv(out / "train" / "results.csv")) == 2


def test_config_file_with_command_line_overrides(dacon: Path, tmp_path: Path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "model: test_efficientnet\npretrained: false\nimg-size: 32\nepochs: 3\nbatch_size: 8\n"
        "workers: 0\nloss: focal\nfocal_gamma: 1.5\nsampler: balanced\n"
    )
    out = tmp_path / "runs"
    artkit("train", "--data", dacon, "--config", cfg, "--epochs", "1", "--out", out, "--name", "cfg")
    import yaml

    saved = yaml.safe_load((out / "cfg" / "config.yaml").read_text())
    assert saved["epochs"] == 1  # the flag wins
    assert saved["loss"] == "focal" and saved["focal_gamma"] == 1.5 and saved["sampler"] == "balanced"
    assert len(pd.read_csv(out / "cfg" / "results.csv")) == 1
    cfg.write_text("epochz: 3\n")
    r = artkit("train", "--data", dacon, "--config", cfg, ok=False)
    assert r.exit_code == 2 and "epochz" in r.output


def test_offline_pretrained_fails_clearly(dacon: Path, tmp_path: Path):
    r = artkit("train", "--data", dacon, "--model", "test_efficientnet", "--epochs", "1", "--out", tmp_path, ok=False)
    assert r.exit_code == 2
    assert "pretrained weights" in r.output and "--no-pretrained" in r.output and "Traceback" not in r.output


def test_unreadable_image_stops_with_its_name_unless_skip_bad(dacon: Path, tmp_path: Path):
    (dacon / "train" / "0003.jpg").write_text("not a jpeg")
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "a", ok=False)
    assert r.exit_code == 2 and "0003.jpg" in r.output and "--skip-bad" in r.output
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "b", "--skip-bad")
    assert "skipping 1 unreadable" in r.output and "1 unreadable image(s) skipped" in r.output


def test_truncated_image_found_while_training(dacon: Path, tmp_path: Path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(dacon / "train" / "0005.jpg")
    data = (dacon / "train" / "0005.jpg").read_bytes()
    (dacon / "train" / "0005.jpg").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "a", "--workers", "1", ok=False)
    assert r.exit_code == 2 and "0005.jpg" in r.output and "Traceback" not in r.output
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path / "b", "--skip-bad")
    assert "skipping 1 unreadable" in r.output
    assert any(
        "0005.jpg" in p for p in json.loads((tmp_path / "b" / "train" / "summary.json").read_text())["skipped_bad"]
    )


def test_user_errors_are_one_message(dacon: Path, tmp_path: Path):
    cases = [
        (["train", "--data", tmp_path / "missing"], "data folder not found"),
        (["train", "--data", dacon, "--model", "resnet5000", "--out", tmp_path], "unknown model"),
        (["train", "--data", dacon, *TINY, "--label-col", "painter", "--out", tmp_path], "painter"),
        (["train", "--data", dacon, *TINY, "--aug", "heavy", "--out", tmp_path], "--aug"),
        (["predict", tmp_path / "none.pt", "--data", dacon], "not found"),
        (["train", "--data", dacon, *TINY, "--device", "cuda:7", "--out", tmp_path], "cuda"),
    ]
    for args, expected in cases:
        r = artkit(*args, ok=False)
        assert r.exit_code == 2, (args, r.output)
        assert expected in r.output.lower() or expected in r.output, (args, r.output)
        assert "Traceback" not in r.output


def test_eval_refuses_unknown_classes(dacon: Path, tmp_path: Path):
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    other = tmp_path / "other.csv"
    pd.DataFrame({"id": ["x"], "img_path": [str(dacon / "train" / "0000.jpg")], "artist": ["Pablo Picasso"]}).to_csv(
        other, index=False
    )
    r = artkit("eval", tmp_path / "train" / "best.pt", "--csv", other, ok=False)
    assert r.exit_code == 2 and "Pablo Picasso" in r.output


def test_folder_layout_trains_and_predicts(folders: Path, tmp_path: Path):
    artkit("train", "--data", folders, *TINY, "--epochs", "1", "--out", tmp_path)
    artkit("predict", tmp_path / "train" / "best.pt", "--data", folders, "-o", tmp_path / "s.csv")
    assert pd.read_csv(tmp_path / "s.csv")["id"].tolist() == ["t0", "t1", "t2", "t3"]


def test_on_a_cpu_images_load_between_steps_unless_workers_are_asked_for(folders: Path, tmp_path: Path, monkeypatch):
    import artkit.engine.rundata as rundata
    import artkit.engine.session as session

    started = []
    real = rundata.data_loader
    monkeypatch.setattr(
        rundata, "data_loader", lambda ds, workers, *a, **k: started.append(workers) or real(ds, workers, *a, **k)
    )
    monkeypatch.setattr(session, "loader_workers", lambda device: 0 if device == "cpu" else 8)
    at = TINY.index("--workers")
    defaults = TINY[:at] + TINY[at + 2 :]
    shown = artkit("train", "--data", folders, *defaults, "--epochs", "1", "--out", tmp_path).output
    assert "images load in the main process, between steps" in shown and set(started) == {0}
    started.clear()
    shown = artkit("train", "--data", folders, *defaults, "--epochs", "1", "--workers", "1", "--out", tmp_path).output
    assert "images load in the main process" not in shown and set(started) == {1}
    import artkit.data.dataset as dataset
    import artkit.system as system

    started.clear()
    monkeypatch.setattr(
        dataset, "data_loader", lambda ds, workers, *a, **k: started.append(workers) or real(ds, workers, *a, **k)
    )
    monkeypatch.setattr(system, "loader_workers", lambda device: 0 if device == "cpu" else 8)
    artkit("predict", tmp_path / "train" / "best.pt", "--data", folders, "-o", tmp_path / "s.csv")
    assert started == [0]


@pytest.mark.slow
def test_weights_file_starts_a_run_with_another_class_count(folders: Path, dacon: Path, tmp_path: Path):
    artkit("train", "--data", folders, *TINY, "--epochs", "1", "--out", tmp_path, "--name", "two")
    two = tmp_path / "two" / "best.pt"  # 2 classes; the next run has 3
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path, "--name", "three", "--weights", two)
    out = " ".join(r.output.split())  # undo Rich's line wrapping
    assert "re-initialised 2 of another shape (classifier" in out and "(weights from " in out
    started = torch.load(two, weights_only=True)["state_dict"]
    assert (
        torch.load(tmp_path / "three" / "best.pt", weights_only=True)["state_dict"]["classifier.weight"].shape[0] == 3
    )
    assert started["classifier.weight"].shape[0] == 2
    r = artkit("train", "--data", dacon, *TINY, "--out", tmp_path, "--weights", tmp_path / "nope.pt", ok=False)
    assert r.exit_code == 2 and "nope.pt" in r.output and "Traceback" not in r.output


def test_help_is_fast_and_imports_no_torch():
    code = "import sys, artkit.cli; assert 'torch' not in sys.modules and 'albumentations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    r = subprocess.run([sys.executable, "-m", "artkit", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "train" in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    dacon: Path, tmp_path: Path, monkeypatch, device: str
):
    """On CUDA the loss is read every few steps, not every step: the NaN still stops the run at a read."""
    import artkit.engine.session as session

    real_create_loss = session.create_loss

    def exploding_after_first_epoch(*args, **kwargs):
        loss = real_create_loss(*args, **kwargs)
        calls = {"n": 0}
        steps_per_epoch = 3  # 19 training rows at batch size 8

        class Exploding(torch.nn.Module):
            def forward(self, logits, target):
                calls["n"] += 1
                value = loss(logits, target)
                return value * float("nan") if calls["n"] > steps_per_epoch + 1 else value

        return Exploding()

    monkeypatch.setattr(session, "create_loss", exploding_after_first_epoch)
    r = artkit("train", "--data", dacon, *TINY, "--device", device, "--epochs", "3", "--out", tmp_path, ok=False)
    assert r.exit_code == 2 and "nan" in r.output.lower() and "last good checkpoint" in r.output
    assert torch.load(tmp_path / "train" / "last.pt", weights_only=True)["epoch"] == 1


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["off", "fp16", "bf16"])
def test_cuda_train_and_predict_with_amp(dacon: Path, tmp_path: Path, amp: str):
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--device", "cuda", "--amp", amp, "--out", tmp_path)
    artkit(
        "predict",
        tmp_path / "train" / "best.pt",
        "--data",
        dacon,
        "--device",
        "cuda",
        "--amp",
        amp,
        "-o",
        tmp_path / "s.csv",
    )
    assert len(pd.read_csv(tmp_path / "s.csv")) == 7
