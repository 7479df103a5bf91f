"""The Rich reporter: bars on a terminal, plain lines elsewhere; inference passes report progress."""

import io
from pathlib import Path

import pytest
from rich.console import Console

import artkit.cli.progress as reporter_module
from artkit.cli.progress import RichReporter
from artkit.progress import Reporter

from helpers import FakeClock


def _console(monkeypatch, terminal: bool) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(reporter_module, "console", Console(file=buf, force_terminal=terminal, width=100))
    return buf


def test_inference_bar_on_a_terminal_only(monkeypatch):
    buf = _console(monkeypatch, terminal=True)
    with RichReporter() as r:
        r.progress("predict", 1, 3)
        assert r.pass_bar is not None
        r.progress("predict", 3, 3)
        assert r.pass_bar is None  # finished passes leave no bar behind
        r.progress("validate", 1, 2)
    assert r.pass_bar is None  # closed on leaving the block
    assert "predict" in buf.getvalue()

    buf = _console(monkeypatch, terminal=False)
    with RichReporter() as r:
        r.progress("predict", 1, 3)
        assert r.pass_bar is None
    assert buf.getvalue() == ""


@pytest.mark.slow
def test_predict_eval_and_validation_report_their_passes(dacon: Path, tmp_path: Path):
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.inference.config import EvalConfig, PredictConfig
    from artkit.inference.evaluate import run_eval
    from artkit.inference.predict import run_predict

    class Recorder(Reporter):
        def __init__(self):
            self.passes = []

        def progress(self, task, done, total):
            self.passes.append((task, done, total))

    rec = Recorder()
    result = train(
        TrainConfig(
            data=str(dacon),
            model="test_efficientnet",
            pretrained=False,
            img_size=32,
            epochs=1,
            batch_size=8,
            workers=0,
            out=str(tmp_path),
        ),
        rec,
    )
    assert ("validate", 1, 1) in rec.passes
    opts = dict(batch_size=2, workers=0)
    rec.passes.clear()
    run_predict(
        PredictConfig(checkpoint=str(result.best_path), data=str(dacon), out=str(tmp_path / "s.csv"), **opts), rec
    )
    assert [p[1] for p in rec.passes] == [1, 2, 3, 4] and {p[2] for p in rec.passes} == {4}  # 7 images, 2 a batch
    rec.passes.clear()
    run_eval(EvalConfig(checkpoint=str(result.best_path), **opts), rec)
    assert rec.passes and rec.passes[-1][1] == rec.passes[-1][2]


def test_off_a_terminal_a_plain_progress_line_every_interval(monkeypatch):
    buf, clock = _console(monkeypatch, terminal=False), FakeClock()
    r = RichReporter(clock=clock, interval=30)
    r.epoch_start(1, 3, 100)
    for step in range(1, 101):
        clock.advance(1.0)  # a step a second
        r.step(step, 1.0, 1e-3, 10.0)
    lines = [line for line in buf.getvalue().splitlines() if " step " in line]
    assert len(lines) == 3, lines  # at 30, 60 and 90 s; the epoch's own line follows at its end
    assert "epoch 1/3 step 30/100 (30%) loss 1.0000 lr 1.00e-03 10 img/s, epoch ETA 1m10s" in lines[0]
    r.progress("validate", 1, 50)
    for done in range(2, 51):
        clock.advance(1.0)
        r.progress("validate", done, 50)
    assert [line.strip() for line in buf.getvalue().splitlines() if "validate" in line] == [
        "validate: batch 31/50 (62%)"
    ]


def test_a_redirected_training_run_logs_progress_lines(dacon: Path, tmp_path: Path, monkeypatch):
    from helpers import TINY, artkit

    monkeypatch.setenv("ARTKIT_LOG_INTERVAL", "0")  # every step, so that a tiny run shows them
    out = artkit("train", dacon, *TINY, "--epochs", "1", "--out", tmp_path).output  # CliRunner's output is no terminal
    assert "epoch 1/1 step 1/" in out and "epoch ETA" in out, out
