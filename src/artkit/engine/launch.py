"""``artkit train --devices``: start the processes of a multi-device run on this machine with PyTorch's own
launcher (``torch.distributed.run``, what ``torchrun`` is), or fan k-fold runs out, one fold per device."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig, parse_duration
from artkit.errors import ArtkitError
from artkit.options import OptionInfo, options, save_config
from artkit.progress import Reporter
from artkit.system import PROCESSES_ENV, usable_cores

LAUNCH_NOT_FORWARDED = {"devices", "chosen"}  # options the child processes must not see again


@dataclass(frozen=True, kw_only=True)
class Devices:
    kind: str  # "cuda" or "cpu"
    ids: list[int]  # GPU ids, or 0..N-1 for N CPU processes

    @property
    def count(self) -> int:
        return len(self.ids)

    def child_device(self, k: int) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.ids[k]}"


def parse_devices(spec: str) -> Devices:
    """``0,1,2,3`` (GPU ids) or ``cpu:N`` (N CPU processes)."""
    text = spec.strip().lower()
    try:
        if text.startswith("cpu:"):
            n = int(text[4:])
            ids = list(range(n))
            kind = "cpu"
        else:
            ids = [int(v) for v in text.split(",") if v.strip()]
            kind = "cuda"
    except ValueError:
        raise ArtkitError(f"--devices must be GPU ids such as 0,1,2,3 or cpu:N (got {spec!r})") from None
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ArtkitError(f"--devices must name each device once, at least one (got {spec!r})")
    if kind == "cuda":
        check_gpus(ids)
    cores = usable_cores()
    if kind == "cpu" and len(ids) > cores:
        raise ArtkitError(
            f"--devices {spec} starts {len(ids)} processes on a machine with {cores} CPU core(s): "
            "each would get a fraction of a core, and all would run slower than one",
            f"use at most --devices cpu:{cores}",
        )
    return Devices(kind=kind, ids=ids)


def check_gpus(ids: list[int]) -> None:
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [i for i in ids if i >= available]
    if missing:
        raise ArtkitError(
            f"--devices names GPU {', '.join(map(str, missing))}, but this machine has {available} visible GPU(s)",
            "use --devices cpu:N for CPU processes, or ids from nvidia-smi",
        )


def check_master_port() -> None:
    """A MASTER_PORT the user set must be free, or the processes cannot meet."""
    port = os.environ.get("MASTER_PORT")
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", int(port)))
        except OSError:
            raise ArtkitError(
                f"MASTER_PORT {port} is in use on this machine (another job?)",
                "unset MASTER_PORT (artkit then picks a free port) or choose another",
            ) from None


def _flag(info: OptionInfo, value) -> list[str]:
    if info.base is bool:
        if info.spec.negatable:
            return [info.flag if value else f"--no-{info.flag[2:]}"]
        return [info.flag] if value else []
    if isinstance(value, list):
        return [info.flag, ",".join(map(str, value))] if value else []
    return [info.flag, str(value)]


def command_args(cfg: TrainConfig, explicit: set[str], **overrides) -> list[str]:
    """``artkit train`` arguments that reproduce ``cfg``'s explicit options (plus ``overrides``)."""
    args = []
    for info in options(TrainConfig):
        name = info.name
        if name in LAUNCH_NOT_FORWARDED or not info.spec.cli:
            continue
        value = overrides.get(name, getattr(cfg, name))
        if (name in explicit or name in overrides) and value is not None:
            args += _flag(info, value)
    return args


def torchrun_command(devices: Devices, train_args: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={devices.count}",
        "-m",
        "artkit",
        "train",
        *train_args,
    ]


def printable(command: list[str]) -> str:
    """The torchrun line to paste into a cluster script."""
    import shlex

    shown = ["torchrun", *command[3:]] if command[1:3] == ["-m", "torch.distributed.run"] else command
    return " ".join(shlex.quote(c) for c in shown)


def child_env(devices: Devices) -> dict[str, str]:
    env = dict(os.environ)
    if devices.kind == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = visible_to_children(devices.ids)
    return env


def visible_to_children(ids: list[int]) -> str:
    """CUDA_VISIBLE_DEVICES for processes on GPUs ``ids``, which count the GPUs this process sees: with its own
    CUDA_VISIBLE_DEVICES (a cluster's job, '4,5', or UUIDs and MIG names), id 0 is its first entry, not GPU 0."""
    seen = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    return ",".join(seen[i] if i < len(seen) else str(i) for i in ids) if seen else ",".join(map(str, ids))


@dataclass(kw_only=True)
class Launch:
    command: list[str]
    returncode: int
    folds: dict[int, int] = field(default_factory=dict)  # fold -> exit code (fan-out)
    run_dir: Path | None = None
    cv: dict | None = None


def launch_ddp(cfg: TrainConfig, explicit: set[str], reporter: Reporter) -> Launch:
    """One model on every device: torchrun with one process per device (the output is rank 0's)."""
    devices = parse_devices(cfg.devices)
    check_master_port()
    device = "cpu" if devices.kind == "cpu" else "cuda"  # each rank takes cuda:LOCAL_RANK of the visible GPUs
    command = torchrun_command(devices, command_args(cfg, explicit | {"device"}, device=device))
    reporter.message(f"{devices.count} processes on {cfg.devices}; the same run on a cluster: {printable(command)}")
    with children_end_with_this_process() as children:
        proc = subprocess.Popen(command, env=child_env(devices), start_new_session=True)
        children.append(proc)
        code = proc.wait()
    return Launch(command=command, returncode=code)


STOP_GRACE_SECONDS = 10.0  # how long a child has to stop after SIGTERM before it is killed


@contextmanager
def children_end_with_this_process() -> Iterator[list[subprocess.Popen]]:
    """Child processes (each in a session of its own, so that its workers are one process group) that end with
    this one: on SIGTERM, Ctrl-C or any error, each group gets SIGTERM, then SIGKILL after a grace period. Without
    this a killed parent left torchrun and its workers training on as orphans."""
    children: list[subprocess.Popen] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield children
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for proc in children:
            _end_group(proc)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: the children are stopped on the way out


def _end_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
            return


def launch_folds(cfg: TrainConfig, explicit: set[str], reporter: Reporter) -> Launch:
    """k-fold fan-out: fold runs in parallel, one process per device, then oof.csv and cv.json."""
    from artkit.engine.kfold import HEADER, write_oof
    from artkit.engine.runs import new_run_dir

    devices = parse_devices(cfg.devices)
    parent = new_run_dir(cfg.out, cfg.name or "kfold")
    save_config(replace(cfg, devices=None, fold=None), parent / "config.yaml", header=HEADER)
    base = command_args(cfg, explicit - {"time"}, out=str(parent.parent), name=parent.name)  # --time: per fold
    with children_end_with_this_process() as children:
        codes = _run_folds(cfg, devices, parent, base, reporter, children)
    cv = write_oof(parent, cfg.folds) if all(c == 0 for c in codes.values()) else None
    return Launch(
        command=[sys.executable, "-m", "artkit", "train", *base],
        returncode=max(codes.values()),
        folds=codes,
        run_dir=parent,
        cv=cv,
    )


def _run_folds(
    cfg: TrainConfig,
    devices: Devices,
    parent: Path,
    base: list[str],
    reporter: Reporter,
    children: list[subprocess.Popen],
) -> dict[int, int]:
    """Each fold in a process of its own, as many at a time as there are devices; fold -> exit code."""
    queue, running, codes = list(range(cfg.folds)), {}, {}
    free = list(range(devices.count))
    budget = TimeBudget(seconds=parse_duration(cfg.time)) if cfg.time else None
    while queue or running:
        while queue and free:
            fold, slot = queue.pop(0), free.pop(0)
            args = [*base, "--fold", str(fold), "--device", devices.child_device(slot)]
            if budget is not None:  # --time is for all folds, as without --devices: a share for each wave of folds
                args += ["--time", fold_time(budget, len(queue) + 1, devices.count)]
            log = (parent / f"fold{fold}.log").open("w", encoding="utf-8")
            proc = subprocess.Popen(
                [sys.executable, "-m", "artkit", "train", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_single_env(devices, slot),
                start_new_session=True,
            )
            children.append(proc)
            running[fold] = (proc, slot, log)
            reporter.message(f"fold {fold} started on {devices.child_device(slot)} (log: {parent / f'fold{fold}.log'})")
        time.sleep(0.5)
        for fold, (proc, slot, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                codes[fold] = proc.returncode
                free.append(slot)
                del running[fold]
                status = "finished" if proc.returncode == 0 else f"FAILED (exit code {proc.returncode})"
                reporter.message(f"fold {fold} {status}")
    return codes


def fold_time(budget: TimeBudget, folds_left: int, devices: int) -> str:
    """A fold's ``--time``: what is left of the budget over the waves of folds still to start (``devices`` run at
    once), so that --time means the whole k-fold run with --devices as without it."""
    import math

    waves = max(math.ceil(folds_left / max(devices, 1)), 1)
    return f"{max(budget.left() / waves, 1.0):.1f}s"


def _single_env(devices: Devices, slot: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env[PROCESSES_ENV] = str(devices.count)  # N processes share the cores: each loads with its share
    if devices.kind == "cpu":
        env.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // devices.count)))
    return env
