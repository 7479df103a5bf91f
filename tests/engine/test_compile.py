"""--compile: training steps and inference run through torch.compile, with the same numbers and plain checkpoints;
a compiler that fails is one message. torch.compile runs with its "eager" backend here (dynamo traces the model
into the real OptimizedModule, without minutes of C++ compilation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import torch

from artkit.engine.checkpoint import load_checkpoint
from artkit.engine.device import Runtime

from helpers import TINY, artkit


@dataclass
class Compiles:
    modules: list[torch.nn.Module] = field(default_factory=list)  # what torch.compile was asked to compile
    graphs: list[list[tuple[int, ...]]] = field(default_factory=list)  # each compiled graph's input shapes


@pytest.fixture
def compiles(monkeypatch) -> Compiles:
    """torch.compile with a backend that records each graph and runs it eagerly; dynamo starts afresh (it remembers
    the sizes a model's code has seen, and compiles for any size once it has seen two)."""
    torch._dynamo.reset()
    seen = Compiles()
    real = torch.compile

    def record(graph, inputs):
        seen.graphs.append([tuple(i.shape) for i in inputs if isinstance(i, torch.Tensor)])
        return graph.forward

    def compile_eagerly(module, **kw):
        seen.modules.append(module)
        return real(module, backend=record)

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    return seen


def test_a_last_smaller_batch_runs_eagerly_instead_of_compiling_the_model_again(compiles):
    import timm

    model = timm.create_model("test_efficientnet", num_classes=3).eval()
    batches = [torch.randn(n, 3, 32, 32) for n in (8, 8, 3)]
    fast = Runtime(device=torch.device("cpu"), compile=True).compiled(model)
    with torch.no_grad():
        for images in batches:
            torch.testing.assert_close(fast(images), model(images))
        assert len(compiles.graphs) == 1 and (8, 3, 32, 32) in compiles.graphs[0]
        compiles.graphs.clear()
        torch._dynamo.reset()
        varying = Runtime(device=torch.device("cpu"), compile=True).compiled(model, one_batch_size=False)
        for images in batches:
            varying(images)
    assert len(compiles.graphs) == 2  # what a second batch size costs: the model compiled again


@pytest.mark.slow
def test_compiled_training_gives_the_same_run_and_plain_checkpoints(dacon: Path, tmp_path: Path, compiles):
    plain = artkit("train", dacon, *TINY, "--epochs", "2", "--out", tmp_path, "--name", "plain")
    assert not compiles.modules and "torch.compile" not in plain.output
    compiled = artkit("train", dacon, *TINY, "--epochs", "2", "--compile", "--out", tmp_path, "--name", "compiled")
    assert len(compiles.modules) == 1 and "torch.compile (the first steps wait for the compiler)" in compiled.output
    assert len(compiles.graphs) == 1  # the epochs' last, smaller batches ran eagerly
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
    artkit("predict", best, dacon, "--compile", "--batch-size", "4", "-o", tmp_path / "compiled.csv")
    assert len(compiles.modules) == 1 and len(compiles.graphs) == 1  # 7 images: a batch of 4, then 3 eagerly
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
