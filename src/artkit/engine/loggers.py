"""Experiment trackers people already use, as reporters: ``--logger tensorboard`` writes event files into the run
folder, ``--logger mlflow`` logs to ``$MLFLOW_TRACKING_URI`` (default: a local ``mlruns/`` folder). Each is an
optional extra (``pip install 'artkit[tensorboard]'``, ``'artkit[mlflow]'``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from artkit.errors import ArtkitError
from artkit.progress import Reporter

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
    """One MLflow run per artkit run (per fold for k-fold): its options as params, metrics per epoch. It talks to
    the tracking store through an ``MlflowClient`` with an explicit run id, so that each call may run in a helper
    thread with a time limit (MLflow's fluent API keeps its active run per thread)."""

    def __init__(self) -> None:
        self.mlflow = _require("mlflow", "mlflow")
        self.client = None
        self.run_id: str | None = None

    def start(self, info: dict[str, Any]) -> None:
        self.close()
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
        if uri.startswith("file:"):  # MLflow 3 keeps a local folder store only on request
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "artkit")
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        self.client = client
        self.run_id = client.create_run(experiment_id, run_name=Path(info["run_dir"]).name).info.run_id
        params = {k: str(v)[:500] for k, v in (info.get("config") or {}).items() if v is not None}
        params["run_dir"] = str(info["run_dir"])
        client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()])

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        import time

        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["epoch"])
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in _finite(row).items()])

    def close(self, failed: bool = False) -> None:
        if self.run_id is not None:
            run_id, self.run_id = self.run_id, None
            self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")


LOGGERS: dict[str, Callable[[], Reporter]] = {"tensorboard": TensorBoardLogger, "mlflow": MlflowLogger}


TRACKER_TIMEOUT_SECONDS = 15.0  # a tracker call that takes longer is given up, and training goes on without it


class Reporters(Reporter):
    """Several reporters as one: the CLI's display (the first) and the experiment loggers. A logger whose call
    fails or does not answer within TRACKER_TIMEOUT_SECONDS (a tracking server that is down, an unwritable URI)
    is reported once and dropped: a tracker never stops or stalls a run."""

    def __init__(self, reporters: list[Reporter], timeout: float | None = None) -> None:
        self.reporters = reporters
        self.timeout = TRACKER_TIMEOUT_SECONDS if timeout is None else timeout

    def _each(self, method: str, *args: Any) -> None:
        display, *loggers = self.reporters
        getattr(display, method)(*args)
        for logger in loggers:
            if getattr(type(logger), method) is getattr(Reporter, method):
                continue  # what a logger does not record costs no thread
            problem = _call_with_timeout(getattr(logger, method), args, self.timeout)
            if problem:
                self.reporters.remove(logger)
                name = next((k for k, v in LOGGERS.items() if isinstance(logger, v)), type(logger).__name__)
                display.warning(f"--logger {name}: {problem}; training goes on without it")

    def start(self, info: dict[str, Any]) -> None:
        self._each("start", info)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._each("epoch_start", epoch, epochs, steps)

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        self._each("step", step, loss, lr, images_per_s)

    def epoch_end(self, row: dict[str, Any], improved: bool) -> None:
        self._each("epoch_end", row, improved)

    def message(self, text: str) -> None:
        self._each("message", text)

    def warning(self, text: str) -> None:
        self._each("warning", text)

    def progress(self, task: str, done: int, total: int) -> None:
        self._each("progress", task, done, total)

    def planned(self, epochs: int) -> None:
        self._each("planned", epochs)

    def close(self, failed: bool = False) -> None:
        for logger in self.reporters[1:]:  # the first is the caller's own reporter, which the caller closes
            _call_with_timeout(logger.close, (failed,), self.timeout)


def _call_with_timeout(fn: Callable[..., Any], args: tuple, timeout: float) -> str | None:
    """Call ``fn`` in a helper thread; what went wrong (an error, or no answer in time), or None."""
    import threading

    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            fn(*args)
            outcome.append(None)
        except Exception as exc:  # a tracker's own errors: requests, mlflow, OSError, ...
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)  # a hung call is left behind, not waited for
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    exc = outcome[0]
    if exc is None:
        return None
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return f"failed ({first})"


def with_loggers(reporter: Reporter, names: list[str]) -> Reporters:
    if "mlflow" in names:  # fail fast instead of MLflow's retries over minutes against a server that is down
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(TRACKER_TIMEOUT_SECONDS)))
    return Reporters([reporter, *(LOGGERS[name]() for name in names)])
