"""The CUDA path end to end (skipped without a GPU): what the first GPU day checks before it measures anything.

Each test runs a command the way a user would, on the GPU, and checks what could differ there: the numeric path
``--amp auto`` picks and says, loader processes with pinned memory, the step loop that reads the loss only every
few steps (and still stops on a NaN with the last good checkpoint kept), and the inference commands.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import TINY, artkit

pytestmark = pytest.mark.cuda


def _train(dacon: Path, out: Path, *extra: str):
    return artkit("train", "--data", dacon, *TINY, "--device", "cuda", "--out", out, *extra)


def test_amp_auto_picks_a_half_precision_on_the_gpu_and_says_why(dacon: Path, tmp_path: Path):
    r = _train(dacon, tmp_path, "--epochs", "1", "--amp", "auto")
    picked = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    header = " ".join(r.output.split())  # the console folds long lines
    assert "device cuda" in header and f"amp {picked} (auto: this GPU" in header, header


def test_loader_processes_with_pinned_memory_train_and_predict_on_the_gpu(dacon: Path, tmp_path: Path):
    _train(dacon, tmp_path, "--epochs", "2", "--workers", "2")  # the last --workers counts
    results = pd.read_csv(tmp_path / "train" / "results.csv")
    assert len(results) == 2 and results["train_loss"].notna().all()
    artkit("predict", tmp_path / "train" / "best.pt", "--data", dacon, "--device", "cuda", "--workers", "2",
           "-o", tmp_path / "s.csv")  # fmt: skip
    assert len(pd.read_csv(tmp_path / "s.csv")) == 7


def test_a_nan_loss_on_the_gpu_stops_and_keeps_the_last_good_checkpoint(
    dacon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import artkit.engine.session as session

    real_create_loss = session.create_loss
    steps_per_epoch = 3  # 19 training rows at batch size 8

    def exploding_after_first_epoch(*args, **kwargs):
        loss = real_create_loss(*args, **kwargs)
        calls = {"n": 0}

        class Exploding(torch.nn.Module):
            def forward(self, logits, target):
                calls["n"] += 1
                value = loss(logits, target)
                return value * float("nan") if calls["n"] > steps_per_epoch + 1 else value

        return Exploding()

    monkeypatch.setattr(session, "create_loss", exploding_after_first_epoch)
    r = artkit("train", "--data", dacon, *TINY, "--device", "cuda", "--epochs", "3", "--out", tmp_path, ok=False)
    assert r.exit_code == 2 and "nan" in r.output.lower() and "last good checkpoint" in r.output
    assert torch.load(tmp_path / "train" / "last.pt", weights_only=True)["epoch"] == 1


def test_eval_ensemble_and_explain_run_on_the_gpu(dacon: Path, tmp_path: Path):
    _train(dacon, tmp_path / "a", "--epochs", "1")
    _train(dacon, tmp_path / "b", "--epochs", "1", "--seed", "1")
    best = [tmp_path / side / "train" / "best.pt" for side in ("a", "b")]
    artkit("eval", best[0], "--device", "cuda", "--out", tmp_path / "ev")
    assert (tmp_path / "ev" / "metrics.json").is_file()
    artkit("ensemble", *best, "--data", dacon, "--device", "cuda", "-o", tmp_path / "ens.csv")
    written = pd.read_csv(tmp_path / "ens.csv", dtype=str)
    assert written["id"].tolist() == pd.read_csv(dacon / "test.csv", dtype=str)["id"].tolist()
    one = sorted((dacon / "test").iterdir())[0]
    artkit("explain", best[0], one, "--device", "cuda", "-o", tmp_path / "ex")
    assert len(list((tmp_path / "ex").glob("*.png"))) == 1


def test_the_same_seed_gives_the_same_epoch_losses_on_the_gpu(dacon: Path, tmp_path: Path):
    """A run is reproducible on the GPU too (to the last digits cuDNN's algorithms may change)."""
    for side in ("a", "b"):
        _train(dacon, tmp_path / side, "--epochs", "2", "--amp", "off")
    a, b = (pd.read_csv(tmp_path / side / "train" / "results.csv") for side in ("a", "b"))
    assert a["train_loss"].tolist() == pytest.approx(b["train_loss"].tolist(), rel=1e-3)
