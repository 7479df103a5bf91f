"""The Rich reporter: bars on a terminal, plain lines elsewhere; inference passes report progress."""

import io
from pathlib import Path

from rich.console import Console

import artkit.cli.reporter as reporter_module
from artkit.cli.reporter import RichReporter
from artkit.reporting import Reporter


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


def test_predict_eval_and_validation_report_their_passes(dacon: Path, tmp_path: Path):
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.predict.config import EvalConfig, PredictConfig
    from artkit.predict.evaluate import run_eval
    from artkit.predict.predict import run_predict

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
