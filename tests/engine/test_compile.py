"""--compile: training steps and inference run through torch.compile, with the same numbers and plain checkpoints;
a compiler that fails is one message. torch.compile runs with its "eager" backend here (dynamo traces the model
into the real OptimizedModule, without minutes of C++ compilation)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from artkit.engine.checkpoint import load_checkpoint

from helpers import TINY, artkit


@pytest.fixture
def compiles(monkeypatch) -> list[torch.nn.Module]:
    """torch.compile with the eager backend; the list of modules it was asked to compile."""
    asked: list[torch.nn.Module] = []
    real = torch.compile

    def compile_eagerly(module, **kw):
        asked.append(module)
        return real(module, backend="eager")

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    return asked


@pytest.mark.slow
def test_compiled_training_gives_the_same_run_and_plain_checkpoints(dacon: Path, tmp_path: Path, compiles):
    plain = artkit("train", dacon, *TINY, "--epochs", "2", "--out", tmp_path, "--name", "plain")
    assert not compiles and "torch.compile" not in plain.output
    compiled = artkit("train", dacon, *TINY, "--epochs", "2", "--compile", "--out", tmp_path, "--name", "compiled")
    assert len(compiles) == 1 and "torch.compile (the first steps wait for the compiler)" in compiled.output
    columns = ["train_loss", "val_loss", "val_macro_f1"]
    a = pd.read_csv(tmp_path / "plain" / "results.csv")[columns]
    b = pd.read_csv(tmp_path / "compiled" / "results.csv")[columns]
    pd.testing.assert_frame_equal(a, b, rtol=1e-5)
    saved = load_checkpoint(tmp_path / "compiled" / "best.pt")["state_dict"]
    assert saved.keys() == load_checkpoint(tmp_path / "plain" / "best.pt")["state_dict"].keys()
    assert not any("_orig_mod" in key for key in saved)  # the compiled wrapper's names never reach a file


@pytest.mark.slow
def test_compiled_prediction_writes_the_same_submission(dacon: Path, tmp_path: Path, compiles):
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    best = tmp_path / "train" / "best.pt"
    artkit("predict", best, dacon, "-o", tmp_path / "plain.csv")
    artkit("predict", best, dacon, "--compile", "-o", tmp_path / "compiled.csv")
    assert len(compiles) == 1
    assert (tmp_path / "plain.csv").read_text() == (tmp_path / "compiled.csv").read_text()


def test_a_compiler_that_fails_is_one_message(dacon: Path, tmp_path: Path, monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    class NoCompiler(torch.nn.Module):
        def forward(self, x):
            raise TorchDynamoException("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: NoCompiler())
    r = artkit("train", dacon, *TINY, "--epochs", "1", "--compile", "--out", tmp_path, ok=False)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "torch.compile failed: InvalidCxxCompiler: No working C++ compiler found" in text
    assert "leave out --compile" in text
    artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path, "--name", "ok")  # without it, it trains
    r = artkit("predict", tmp_path / "ok" / "best.pt", dacon, "--compile", "-o", tmp_path / "s.csv", ok=False)
    assert r.exit_code == 2 and "torch.compile failed" in " ".join(r.output.split())
    assert not (tmp_path / "s.csv").exists()
