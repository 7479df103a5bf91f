"""The Python API, for notebooks (Kaggle, Colab): each command as a function with the command line's options,
defaults, checks, run folders and progress output. ``artkit.train("data/", time="30m")`` is
``artkit train data/ --time 30m``; options are the flags with underscores (``batch_size=16``, ``no_ema`` is
``ema=False``). A mistake raises :class:`artkit.errors.ArtkitError` with the same message and hint as the
command line; the functions return the results the commands print.
"""

from __future__ import annotations

import os
from typing import Any


def _config(command: str, values: dict[str, Any]) -> Any:
    """The command's config from keyword options, checked as the command line checks flags and ``--config``
    files (unknown names get the closest one, wrong types name the option, no output may replace an input)."""
    import artkit.cli  # noqa: F401 - registers every command and its config class
    from artkit.cli.commands import COMMANDS
    from artkit.options import check_outputs, merge

    given = {k: _plain(v) for k, v in values.items() if v is not None}
    cfg = merge(COMMANDS[command], {}, set(), given, f"artkit.{command.replace(' ', '_')}()")
    check_outputs(cfg)
    return cfg


def _plain(value: Any) -> Any:
    """Paths (``run.best_path``) as the text the options hold; lists of them too."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def demo_data(out: str = "demo/data", seed: int = 0) -> str:
    """Write the built-in synthetic painter dataset (what ``artkit demo`` trains on) to ``out``; its path."""
    from artkit.data.synthetic import make_demo_dataset

    return str(make_demo_dataset(out, seed))


def train(data: str | None = None, **options: Any):
    """``artkit train``: a new run (or k-fold runs with ``folds=K``, or ``resume="runs/NAME"``) into
    ``runs/NAME/``; returns its :class:`~artkit.engine.finish.TrainResult` (run_dir, best_path, best_metrics,
    rows, and cv for k-fold runs)."""
    from artkit.cli.progress import RichReporter
    from artkit.engine.budget import now
    from artkit.engine.train_command import train as run_train

    started = now()
    cfg = _config("train", {"data": data, **options})
    with RichReporter() as reporter:
        return run_train(cfg, reporter, set(options) | ({"data"} if data else set()), started)


def evaluate(checkpoint: str, data: str | None = None, **options: Any):
    """``artkit eval``: score a checkpoint (on its run's validation split, or ``data``/``csv``); returns its
    :class:`~artkit.inference.evaluate.EvalResult` (metrics, per_class, files)."""
    from artkit.cli.progress import RichReporter
    from artkit.inference.evaluate import run_eval

    cfg = _config("eval", {"checkpoint": checkpoint, "data": data, **options})
    with RichReporter() as reporter:
        return run_eval(cfg, reporter)


def predict(checkpoint: str, data: str | None = None, **options: Any):
    """``artkit predict``: a submission (``out``, default submission.csv) in test-set order, and its logits;
    returns its :class:`~artkit.inference.predict.PredictResult`."""
    from artkit.cli.progress import RichReporter
    from artkit.inference.predict import run_predict

    cfg = _config("predict", {"checkpoint": checkpoint, "data": data, **options})
    with RichReporter() as reporter:
        return run_predict(cfg, reporter)


def ensemble(*members: str, **options: Any):
    """``artkit ensemble``: checkpoints, logits files and k-fold run folders averaged into one submission (the
    test set of the folder they were trained on unless ``data`` says otherwise); returns its
    :class:`~artkit.inference.ensemble.EnsembleResult`."""
    from artkit.cli.progress import RichReporter
    from artkit.inference.ensemble import run_ensemble

    cfg = _config("ensemble", {"members": list(members), **options})
    with RichReporter() as reporter:
        return run_ensemble(cfg, reporter)
