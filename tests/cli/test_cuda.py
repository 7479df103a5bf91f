"""The CUDA path end to end (skipped without a GPU): what the first GPU day checks before it measures anything.

Each test runs a command the way a user would, on the GPU, and checks what could differ there: the numeric path
``--amp auto`` picks and says, loader processes with pinned memory, the step loop that reads the loss only every
few steps (its NaN test is test_train_eval_predict.py's, on both devices), and the inference commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from artkit.engine.device import gpu_has_bf16

from helpers import TINY, artkit

pytestmark = pytest.mark.cuda


def _train(dacon: Path, out: Path, *extra: str):
    return artkit("train", "--data", dacon, *TINY, "--device", "cuda", "--out", out, *extra)


def test_amp_auto_picks_a_half_precision_on_the_gpu_and_says_why(dacon: Path, tmp_path: Path):
    r = _train(dacon, tmp_path, "--epochs", "1", "--amp", "auto")
    picked = "bfloat16" if gpu_has_bf16() else "float16"
    header = " ".join(r.output.split())  # the console folds long lines
    assert "device cuda" in header and f"amp {picked} (auto: this GPU" in header, header


def test_loader_processes_with_pinned_memory_train_and_predict_on_the_gpu(dacon: Path, tmp_path: Path):
    _train(dacon, tmp_path, "--epochs", "2", "--workers", "2")  # the last --workers counts
    results = pd.read_csv(tmp_path / "train" / "results.csv")
    assert len(results) == 2 and results["train_loss"].notna().all()
    artkit("predict", tmp_path / "train" / "best.pt", "--data", dacon, "--device", "cuda", "--workers", "2",
           "-o", tmp_path / "s.csv")  # fmt: skip
    assert len(pd.read_csv(tmp_path / "s.csv")) == 7


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


def test_a_gpu_runs_last_checkpoint_loads_on_a_machine_without_one(dacon: Path, tmp_path: Path):
    """last.pt held the optimiser's moments on the GPU: torch.load without a GPU refused it."""
    _train(dacon, tmp_path, "--epochs", "1")
    load = "import sys, torch; torch.load(sys.argv[1], weights_only=True)"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # this process sees no GPU
    for name in ("best.pt", "last.pt"):
        path = str(tmp_path / "train" / name)
        done = subprocess.run([sys.executable, "-c", load, path], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()[-800:]
