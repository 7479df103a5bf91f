"""Experiment trackers people already use, as reporters: ``--logger tensorboard`` writes event files into the run
folder, ``--logger mlflow`` logs to ``$MLFLOW_TRACKING_URI`` (default: a local ``mlruns/`` folder). Each is an
optional extra (``pip install 'artkit[tensorboard]'``, ``'artkit[mlflow]'``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artkit.errors import ArtkitError
from artkit.reporting import Reporter

METRICS = ("lr", "train_loss", "val_loss", "val_acc", "val_macro_f1", "seconds", "images_per_s")


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArtkitError(
            f"--logger {extra} needs the {extra} package, which is not installed", f"pip install 'artkit[{extra}]'"
        ) from None


def _finite(row: dict[str, Any]) -> dict[str, float]:
    import math

    return {k: float(row[k]) for k in METRICS if k in row and math.isfinite(float(row[k]))}


class TensorBoardLogger(Reporter):
    """Scalars per epoch into ``<run>/tensorboard/`` (``tensorboard --logdir runs``)."""

    def __init__(self) -> None:
        self.module = _require("torch.utils.tensorboard", "tensorboard")
        _require("tensorboard", "tensorboard")
        self.writer = None

    def start(self, info: dict[str, Any]) -> None:
        self.close()
        self.writer = self.module.SummaryWriter(log_dir=str(Path(info["run_dir"]) / "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in (info.get("config") or {}).items()))

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        for key, value in _finite(row).items():
            self.writer.add_scalar(key, value, global_step=int(row["epoch"]))
        self.writer.flush()

    def close(self, failed: bool = False) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MlflowLogger(Reporter):
    """One MLflow run per artkit run (per fold for k-fold): its options as params, metrics per epoch."""

    def __init__(self) -> None:
        self.mlflow = _require("mlflow", "mlflow")
        self.active = False

    def start(self, info: dict[str, Any]) -> None:
        self.close()
        mlflow = self.mlflow
        uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
        if uri.startswith("file:"):  # MLflow 3 keeps a local folder store only on request
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "artkit"))
        mlflow.start_run(run_name=Path(info["run_dir"]).name)
        self.active = True
        params = {k: str(v)[:500] for k, v in (info.get("config") or {}).items() if v is not None}
        mlflow.log_params({**params, "run_dir": str(info["run_dir"])})

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        self.mlflow.log_metrics(_finite(row), step=int(row["epoch"]))

    def close(self, failed: bool = False) -> None:
        if self.active:
            self.mlflow.end_run(status="FAILED" if failed else "FINISHED")
            self.active = False


LOGGERS: dict[str, Callable[[], Reporter]] = {"tensorboard": TensorBoardLogger, "mlflow": MlflowLogger}


class Reporters(Reporter):
    """Several reporters as one: the CLI's display and the experiment loggers."""

    def __init__(self, reporters: list[Reporter]) -> None:
        self.reporters = reporters

    def start(self, info: dict[str, Any]) -> None:
        for r in self.reporters:
            r.start(info)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        for r in self.reporters:
            r.epoch_start(epoch, epochs, steps)

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        for r in self.reporters:
            r.step(step, loss, lr, images_per_s)

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        for r in self.reporters:
            r.epoch_end(row, improved)

    def message(self, text: str) -> None:
        for r in self.reporters:
            r.message(text)

    def progress(self, task: str, done: int, total: int) -> None:
        for r in self.reporters:
            r.progress(task, done, total)

    def planned(self, epochs: int) -> None:
        for r in self.reporters:
            r.planned(epochs)

    def close(self, failed: bool = False) -> None:
        for r in self.reporters[1:]:  # the first is the caller's own reporter, which the caller closes
            r.close(failed)


def with_loggers(reporter: Reporter, names: list[str]) -> Reporters:
    return Reporters([reporter, *(LOGGERS[name]() for name in names)])
