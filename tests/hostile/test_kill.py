"""SIGKILL a training run at six moments, resume it, and compare with a run that was never interrupted.

The killed process is a real ``artkit train`` in a subprocess; a small driver patches one function to kill the
process at the chosen moment (mid-epoch, mid-validation, half-way through writing best.pt, last.pt and
results.csv, and just after ``--save-every`` wrote last.pt within an epoch), so nothing in artkit itself knows
about the test. The reference run and the resumed runs run in this process: the same code, without paying for
torch's import (about 10 s on 2 cores) twice a moment.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TINY, artkit, make_dacon

SRC = Path(__file__).resolve().parents[2] / "src"
COMPARED = ["epoch", "lr", "train_loss", "val_loss", "val_acc", "val_macro_f1"]  # not the timings
DRIVER = r"""
import os, signal, sys
sys.path.insert(0, {src!r})
import artkit.engine.checkpoint as checkpoint
import artkit.engine.steps as loop
import artkit.engine.runs as runs
import artkit.engine.trainer as trainer
from artkit.writer import atomic_write

moment = {moment!r}


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def half_written(path, data):
    with atomic_write(path) as fh:  # the temporary file is half written when the kill comes
        fh.write(data[: len(data) // 2])
        fh.flush()
        die()


if moment == "epoch":
    real_update, updates = loop._update, []

    def _update(parts, num):
        updates.append(num)
        if len(updates) == 5:  # 3 updates an epoch: the second step of epoch 2
            die()
        return real_update(parts, num)

    loop._update = _update
elif moment == "validation":
    real_validate, calls = trainer.validate, []

    def validate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            die()
        return real_validate(*args, **kwargs)

    trainer.validate = validate
elif moment in ("best.pt", "last.pt"):
    real_save = checkpoint.save_torch

    def save_torch(obj, path):
        if os.path.basename(path) == moment and obj["epoch"] >= 2:
            import io, torch
            buf = io.BytesIO()
            torch.save(obj, buf)
            half_written(path, buf.getvalue())
        return real_save(obj, path)

    checkpoint.save_torch = save_torch
elif moment == "within-epoch":
    import artkit.engine.hooks.checkpoints as checkpoints
    real_save_last = checkpoints.save_last

    def save_last(loop, row, epoch, num_updates, within=None):
        real_save_last(loop, row, epoch, num_updates, within)
        if within is not None and epoch == 1 and within["step"] == 2:  # --save-every's last.pt at epoch 2, step 2
            die()

    checkpoints.save_last = save_last
elif moment == "results.csv":
    real_write = runs.write_text

    def write_text(path, text):
        if text.count("\n") >= 3:  # header and two epochs: the write of epoch 2
            half_written(path, text.encode())
        return real_write(path, text)

    runs.write_text = write_text

from artkit.cli import main

sys.argv = ["artkit", *{args!r}]
main()
"""
MOMENTS = ["epoch", "validation", "best.pt", "last.pt", "results.csv", "within-epoch"]


def results(run: Path) -> list[dict[str, str]]:
    with (run / "results.csv").open(encoding="utf-8") as fh:
        return [{k: row[k] for k in COMPARED} for row in csv.DictReader(fh)]


def train_args(data: Path, out: Path) -> list[str]:
    # val_loss picks best.pt, so that later epochs improve and write best.pt again
    return [
        "train",
        str(data),
        *TINY,
        "--lr",
        "0.003",
        "--epochs",
        "4",
        "--monitor",
        "val_loss",
        "--seed",
        "3",
        "--out",
        str(out),
    ]


def run_driver(args: list[str], moment: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / f"driver_{moment.replace('.', '_')}.py"
    script.write_text(DRIVER.format(src=str(SRC), moment=moment, args=args), encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[dict[str, str]]]:
    root = tmp_path_factory.mktemp("kill")
    data = make_dacon(root / "data")
    artkit(*train_args(data, root / "ref"))
    rows = results(root / "ref" / "train")
    improved = [r["epoch"] for r in rows if float(r["val_loss"]) == min(float(x["val_loss"]) for x in rows)]
    assert int(improved[-1]) >= 2, "the reference run must write best.pt after epoch 1 for the best.pt case"
    return data, rows


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_killed_run_resumes_to_the_same_results(moment: str, reference, tmp_path: Path):
    data, expected = reference
    args = train_args(data, tmp_path / "runs")
    if moment == "within-epoch":  # last.pt after every update; the resumed run continues at the step it was written
        args += ["--save-every", "0.001s"]
    killed = run_driver(args, moment, tmp_path)
    assert killed.returncode == -signal.SIGKILL, (moment, killed.returncode, killed.stderr[-2000:])
    run = tmp_path / "runs" / "train"
    assert (run / "last.pt").is_file() and (run / "results.csv").is_file()  # the last finished epoch is intact
    artkit("train", "--resume", run)
    assert results(run) == expected
    assert not list(run.glob(".*.tmp")), "temporary files of the killed write remain"
