"""Processes and services that end cleanly: leftover torchrun variables, too many CPU processes, a tracker that
does not answer, a SIGTERM to the --devices parent, and one true line after Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from artkit.engine.loggers import Reporters
from artkit.engine.runs import NOTHING_KEPT, kept_note
from artkit.progress import Reporter

from helpers import TINY, artkit, make_dacon


def test_leftover_rank_variables_without_a_job_are_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = make_dacon(tmp_path / "data")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs", ok=False)
    assert r.exit_code == 2 and "there is no job to join" in " ".join(r.output.split()), r.output
    monkeypatch.setenv("RANK", "x")
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs", ok=False)
    assert r.exit_code == 2 and "must be whole numbers" in r.output, r.output


def test_more_cpu_processes_than_cores_are_refused(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    n = (os.cpu_count() or 1) * 4
    r = artkit("train", data, *TINY, "--devices", f"cpu:{n}", "--out", tmp_path / "runs", ok=False)
    assert r.exit_code == 2 and f"starts {n} processes on a machine with" in " ".join(r.output.split()), r.output


class _Display(Reporter):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)


class _Hangs(Reporter):
    def start(self, info) -> None:
        time.sleep(30)


class _Fails(Reporter):
    def epoch_end(self, row, improved) -> None:
        raise OSError("Read-only file system: '/proc/mlruns'")


def test_a_tracker_that_hangs_or_fails_is_reported_once_and_dropped():
    display = _Display()
    reporters = Reporters([display, _Hangs(), _Fails()], timeout=0.2)
    started = time.perf_counter()
    reporters.start({"run_dir": "x"})
    reporters.epoch_end({"epoch": 1}, True)
    reporters.epoch_end({"epoch": 2}, False)
    assert time.perf_counter() - started < 5
    assert len(display.warnings) == 2 and len(reporters.reporters) == 1
    assert "no answer within 0.2 s" in display.warnings[0] and "Read-only file system" in display.warnings[1]


def _silent_server() -> tuple[socket.socket, int]:
    """A TCP server that accepts connections and never answers: a tracking server that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.slow
def test_training_goes_on_when_mlflow_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    import artkit.engine.loggers as loggers

    server, port = _silent_server()
    monkeypatch.setattr(loggers, "TRACKER_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    data = make_dacon(tmp_path / "data")
    started = time.perf_counter()
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs", "--logger", "mlflow")
    assert "--logger mlflow: no answer within 1 s; training goes on without it" in " ".join(r.output.split())
    assert (tmp_path / "runs" / "train" / "best.pt").is_file() and time.perf_counter() - started < 60
    server.close()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///proc/artkit-mlruns")
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs2", "--logger", "mlflow")
    assert r.output.count("--logger mlflow:") == 1, r.output


def test_an_interrupted_run_says_one_true_thing(tmp_path: Path):
    assert kept_note(None) == NOTHING_KEPT and kept_note(tmp_path) == NOTHING_KEPT
    (tmp_path / "last.pt").write_bytes(b"x")
    (tmp_path / "results.csv").write_text("epoch,lr\n1,0.1\n2,0.1\n3,0.1\n")
    assert kept_note(tmp_path) == f"kept epochs 1-3; continue with: artkit train --resume {tmp_path}"
    kfold = tmp_path / "kf"
    (kfold / "fold1").mkdir(parents=True)
    (kfold / "config.yaml").write_text("folds: 3\n")
    assert kept_note(kfold / "fold1") == NOTHING_KEPT
    (kfold / "fold0").mkdir()
    (kfold / "fold0" / "last.pt").write_bytes(b"x")
    assert kept_note(kfold / "fold1").startswith("kept the finished epochs of fold0; continue with")


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    children: dict[int, list[int]] = {}
    for child, parent in zip(out[::2], out[1::2]):
        children.setdefault(int(parent), []).append(int(child))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state != "Z":
                alive.add(pid)
        except (ProcessLookupError, FileNotFoundError):
            pass
    return alive


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "folds"])
def test_sigterm_to_the_devices_parent_stops_every_child(tmp_path: Path, mode: str):
    data = make_dacon(tmp_path / "data", per_class=(60, 60, 60))
    extra = ["--folds", "2"] if mode == "folds" else []
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artkit",
            "train",
            str(data),
            *TINY,
            "--epochs",
            "50",
            "--devices",
            "cpu:2",
            "--out",
            str(tmp_path / "runs"),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    kids: set[int] = set()
    while time.time() < deadline and len(kids) < 2:  # torchrun and its workers, or the two fold processes
        time.sleep(1)
        kids = _descendants(parent.pid)
    assert len(kids) >= 2, "the children did not start"
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=60)
    deadline = time.time() + 30
    while _alive(kids) and time.time() < deadline:
        time.sleep(0.5)
    assert not _alive(kids), f"children still running after SIGTERM to the parent: {_alive(kids)}"
