"""glibc's malloc as it comes against artkit's setting (:func:`artkit.system.keep_freed_memory`): a bare training
step and a bare forward, each in a fresh process, the two settings alternating.

    python bench/bench_malloc.py --sizes 224:32,128:16 --rounds 3
    python bench/bench_malloc.py --commands ../shared/data/paintings50 --rounds 3

Each measurement is a process of its own (the setting holds for a process's life): "system" runs with
``ARTKIT_MALLOC=system``, "artkit" calls ``keep_freed_memory()`` before the model is built, as every artkit command
does. A row gives the milliseconds a step, the page faults and the kernel (system) CPU seconds a step, and the
process's peak memory; the tuned row also gives its speed against the system row of its round. With
``--commands DATA`` (a Dacon-layout folder), whole commands as a user types them, with their defaults (224 px for
tf_efficientnet_lite0; `--cache off`, so each runs the same work): ``artkit train`` for one epoch of the first
``--images`` paintings (its images/s) and ``artkit predict`` over them (its wall time, start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation

SETTINGS = ("system", "artkit")


def measure(model_name: str, size: int, batch: int, train: bool, steps: int) -> dict:
    """One process's measurement, after its setting was applied: per-step wall ms, page faults, kernel seconds."""
    import torch
    from bench_gpu import bare_step

    from artkit.system import keep_freed_memory

    tuned = keep_freed_memory()
    step = bare_step(model_name, size, batch, torch.device("cpu"), "off", train)  # warmed up
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return {
        "tuned": tuned,
        "ms_per_step": round(seconds / steps * 1000, 1),
        "faults_per_step": round((after.ru_minflt - before.ru_minflt) / steps),
        "kernel_s_per_step": round((after.ru_stime - before.ru_stime) / steps, 3),
        "peak_rss_mb": after.ru_maxrss // 1024,
    }


def run_child(setting: str, args, size: int, batch: int, train: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([args.model, size, batch, train, args.steps])]
    done = subprocess.run(cmd, env=malloc_env(setting), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def malloc_env(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ARTKIT_MALLOC"}
    if setting == "system":
        env["ARTKIT_MALLOC"] = "system"
    return env


def artkit_command(setting: str, *argv: str) -> float:
    """Wall seconds of ``artkit ARGV`` in a fresh process with the malloc ``setting``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "artkit", *argv], env=malloc_env(setting), check=True, capture_output=True)
    return time.perf_counter() - start


def commands(args) -> None:
    """``artkit train`` and ``artkit predict`` with each setting, alternating, on the first ``--images`` paintings."""
    from bench_cpu_workers import subset

    with tempfile.TemporaryDirectory() as tmp:
        data = subset(Path(args.commands), args.images, Path(tmp) / "data")
        common = ["--model", args.model, "--no-pretrained", "--epochs", "1", "--cache", "off", "--out", f"{tmp}/runs"]
        checkpoint = None
        for r in range(args.rounds):
            got: dict[str, dict] = {}
            for setting in SETTINGS if r % 2 == 0 else SETTINGS[::-1]:
                name = f"{setting}{r}"
                seconds = artkit_command(setting, "train", "--data", str(data), *common, "--name", name)
                rate = float(pd.read_csv(f"{tmp}/runs/{name}/results.csv")["images_per_s"].iloc[-1])
                checkpoint = checkpoint or f"{tmp}/runs/{name}/best.pt"  # one model for every predict
                out = f"{tmp}/{name}.csv"
                predict = ["predict", checkpoint, "--data", str(data), "-o", out, "--cache", "off"]
                predict_s = artkit_command(setting, *predict)
                got[setting] = {"train": (rate, seconds), "predict": (len(pd.read_csv(out)) / predict_s, predict_s)}
            for setting in SETTINGS:
                for phase in ("train", "predict"):
                    rate, seconds = got[setting][phase]
                    ratio = rate / got["system"][phase][0]
                    append_row(
                        args.results,
                        invocation(),
                        phase=f"artkit {phase}",
                        round=r,
                        malloc=setting,
                        model=args.model,
                        images=args.images,
                        images_per_s=round(rate, 1),
                        command_s=round(seconds, 1),
                        speed_vs_system=round(ratio, 3),
                    )
                    print(f"artkit {phase} round {r} {setting}: {rate:.1f} images/s ({ratio:.2f}x system)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--sizes", default="224:32,128:16", help="img_size:batch pairs, comma-separated")
    p.add_argument("--phases", default="train,forward")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8, help="timed steps in each process")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "malloc.csv"))
    p.add_argument("--commands", help="a Dacon-layout folder: time whole artkit commands on its paintings instead")
    p.add_argument("--images", type=int, default=480, help="paintings for --commands")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return
    if args.commands:
        commands(args)
        return
    for pair in args.sizes.split(","):
        size, batch = (int(v) for v in pair.split(":"))
        for phase in args.phases.split(","):
            for r in range(args.rounds):
                order = SETTINGS if r % 2 == 0 else SETTINGS[::-1]  # neither always runs first
                got = {s: run_child(s, args, size, batch, phase == "train") for s in order}
                for setting in SETTINGS:
                    row = got[setting]
                    ratio = got["system"]["ms_per_step"] / row["ms_per_step"]
                    append_row(
                        args.results,
                        invocation(),
                        phase=phase,
                        round=r,
                        malloc=setting,
                        model=args.model,
                        img_size=size,
                        batch=batch,
                        steps=args.steps,
                        **row,
                        speed_vs_system=round(ratio, 3),
                    )
                    print(f"{phase} {size}px b{batch} round {r} {setting}: {row} ({ratio:.2f}x system)")


if __name__ == "__main__":
    main()
