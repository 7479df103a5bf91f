"""The first thing to run on a GPU: artkit's training and prediction speed as ratios against bare loops, measured
in the same run on the same device.

    python bench/bench_gpu.py                      # on the GPU machine: under 5 minutes
    python bench/bench_gpu.py --dry                # CPU, tiny sizes, a minute: checks that the script works (CI)
    python bench/bench_gpu.py --timm-train PATH    # also timm's own train.py (from the timm repository)

Measured, for each AMP mode the device has (fp32, bf16, and fp16 on CUDA), channels_last on:

* a **bare step**: forward, backward and AdamW on one batch of pre-made tensors already on the device, the
  ceiling of any training loop (AdamW with torch's fused kernels where artkit uses them, as timm's train.py gets
  them through ``--opt-kwargs fused=True``: the optimiser's kernels favour no side);
* **artkit train**: ``artkit train`` on ``--train-images`` copies of the built-in demo images (decoded, augmented
  and batched by its loader, with the loader processes artkit picks for the device unless ``--workers``), the
  images/s of its last epoch; the ratio to the mean of a bare step just before and just after it is what the
  loader, the hooks and the loop cost;
* **timm train.py** (with ``--timm-train``): timm's reference script on the same images, model, size, batch and
  optimiser, in a folder-per-class copy of them, at each loader process count of ``--timm-workers``: the
  fastest counts;
* **predict** against a **bare forward** (no-grad, pre-made tensors), and against a bare forward of the model with
  its convolutions and batch norms fused (and kernel-padded 'same' convolutions), as artkit's inference runs it;
  predict runs twice, the second time reading the decode cache the first filled;
* after the modes, for the first, a **4-member ensemble** (``artkit ensemble`` of four copies of the checkpoint, which
  runs every member over each batch it decodes once) against one member's **predict**, each with a cold decode
  cache: wall time, and on a GPU peak memory (a CPU's is measured by bench/bench_ensemble_pass.py);
* for the first AMP mode, **artkit train --cache off** against the default ``--cache auto`` run again right after
  it (whose last epoch reads every image from the decode cache), and, after every mode, **artkit train
  --compile** against the default (its last epoch, after the compiler's first steps; with ``--dry``,
  torch.compile's eager backend, which checks the path without minutes of compiling).

The first AMP mode is the one ``--amp auto`` runs (bf16 on a GPU that has it). Each mode's measurements are a row
of ``--results`` (default bench/results/gpu.csv) with the device named, written as soon as they are done, and
the ensemble and ``--compile`` a row each at the end: a run stopped at its time limit keeps what it finished.
The ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation


def amp_modes(device: torch.device) -> list[str]:
    """The AMP modes to measure, what ``--amp auto`` runs first: a run cut short by its time limit keeps it."""
    if device.type == "cuda":
        from artkit.engine.device import gpu_has_bf16

        return ["bf16", "off", "fp16"] if gpu_has_bf16() else ["fp16", "off"]
    return ["off", "bf16"]


def _autocast(device: torch.device, amp: str):
    import contextlib

    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_step(
    model_name: str, size: int, batch: int, device, amp: str, train: bool, fused: bool = False
) -> Callable[[], None]:
    """A bare training step (or no-grad forward) on one pre-made batch, channels_last, with artkit's malloc setting;
    ``fused``: a forward of the model with its convolutions and batch norms fused, as artkit's inference runs it."""
    import timm

    from artkit.engine.optim import fused_kernels_for
    from artkit.models.fuse import fuse_conv_bn
    from artkit.system import keep_freed_memory

    keep_freed_memory()  # artkit's malloc setting, which every artkit command makes: against artkit, the loop alone
    model = timm.create_model(model_name, pretrained=False, num_classes=5)
    if fused:
        model = fuse_conv_bn(model, torch.randn(2, 3, size, size))[0]
    model = model.to(device)
    model = model.to(memory_format=torch.channels_last).train(train)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 5, (batch,), device=device)
    # the optimiser's kernels as artkit picks them (fused where torch has them), so neither side gains by them
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused_kernels_for(model) or None)
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def step() -> None:
        if not train:
            with torch.no_grad(), _autocast(device, amp):
                model(x)
            return
        with _autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    for _ in range(3):  # warm-up: kernels are chosen on the first calls
        step()
    _sync(device)
    return step


def bare_images_per_s(
    model_name: str, size: int, batch: int, device, amp: str, train: bool, steps: int, fused: bool = False
) -> float:
    """Images/s of :func:`bare_step` over ``steps`` steps."""
    step = bare_step(model_name, size, batch, device, amp, train, fused)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def artkit_train_images_per_s(
    data: Path, out: Path, args, amp: str, cache: str = "auto", compile: bool = False
) -> float:
    """The last epoch's images/s of ``artkit train`` on ``data`` (its loader, hooks and loop included)."""
    from artkit.engine.config import TrainConfig
    from artkit.engine.train_command import train
    from artkit.progress import Reporter

    cfg = TrainConfig(
        data=str(data),
        model=args.model,
        pretrained=False,
        img_size=args.img_size,
        batch_size=args.batch,
        epochs=args.epochs,
        amp=amp,
        device=args.device,
        workers=args.workers,
        out=str(out),
        name=f"amp_{amp}" + ("" if cache == "auto" else f"_cache_{cache}") + ("_compile" if compile else ""),
        cache=cache,
        compile=compile,
        aug="light",
        ema=False,
    )
    result = train(cfg, Reporter())
    return float(result.rows[-1]["images_per_s"])


def train_set(data: Path, images: int) -> Path:
    """A Dacon-layout training set of ``images`` copies of the demo's training images (enough steps in an epoch
    that its first batch, waited for while the loader starts, does not set its rate)."""
    import shutil

    import pandas as pd

    out = data.parent / f"train_{images}"
    if out.exists():
        return out
    (out / "train").mkdir(parents=True)
    table = pd.read_csv(data / "train.csv")
    rows = []
    for i in range(images):
        row = table.iloc[i % len(table)]
        name = f"train/{i:05d}{Path(row.img_path).suffix}"
        shutil.copy(data / row.img_path, out / name)
        rows.append({"id": f"T{i:05d}", "img_path": name, "artist": row.artist})
    pd.DataFrame(rows).to_csv(out / "train.csv", index=False)
    return out


def predict_set(data: Path, images: int) -> Path:
    """A Dacon-layout test set of ``images`` copies of the demo's test images (enough batches that predict's
    one-off costs, loading the model and starting the workers, do not set its rate)."""
    import shutil

    import pandas as pd

    out = data.parent / f"predict_{images}"
    if out.exists():
        return out
    (out / "test").mkdir(parents=True)
    sources = pd.read_csv(data / "test.csv")["img_path"].tolist()
    rows = []
    for i in range(images):
        source = data / sources[i % len(sources)]
        name = f"test/{i:05d}{source.suffix}"
        shutil.copy(source, out / name)
        rows.append({"id": f"P{i:05d}", "img_path": name})
    pd.DataFrame(rows).to_csv(out / "test.csv", index=False)
    return out


def artkit_predict_images_per_s(checkpoint: Path, data: Path, args, amp: str) -> tuple[float, float]:
    """Images/s of ``artkit predict`` (start-up included) with a cold decode cache, then with the filled one."""
    from artkit.inference.config import PredictConfig
    from artkit.inference.predict import run_predict

    data = predict_set(data, args.predict_images)

    cfg = PredictConfig(
        checkpoint=str(checkpoint),
        data=str(data),
        out=str(checkpoint.parent / f"sub_{amp}.csv"),
        batch_size=args.batch,
        workers=args.workers,
        device=args.device,
        amp=amp,
        tta="none",
    )
    rates = []
    for _ in range(2):  # the first pass fills the decode cache, the second reads it
        start = time.perf_counter()
        result = run_predict(cfg)
        rates.append(result.rows / (time.perf_counter() - start))
    return rates[0], rates[1]


def ensemble_vs_predict(checkpoint: Path, data: Path, args, amp: str, members: int = 4) -> tuple[float, float | None]:
    """A ``members``-member ensemble (copies of ``checkpoint``) over the predict set against one predict of it, each
    with a decode cache of its own (both decode every image): (time ratio, GPU peak memory ratio or None)."""
    import shutil

    from artkit.inference.config import EnsembleConfig, PredictConfig
    from artkit.inference.ensemble import run_ensemble
    from artkit.inference.predict import run_predict

    data = predict_set(data, args.predict_images)
    copies = [checkpoint.parent / f"member{i}.pt" for i in range(members)]
    for copy in copies:
        shutil.copy(checkpoint, copy)
    opts = dict(data=str(data), batch_size=args.batch, workers=args.workers, device=args.device, amp=amp, tta="none")
    runs = [
        lambda: run_predict(PredictConfig(checkpoint=str(copies[0]), out=str(checkpoint.parent / "one.csv"), **opts)),
        lambda: run_ensemble(
            EnsembleConfig(members=[str(c) for c in copies], out=str(checkpoint.parent / "many.csv"), **opts)
        ),
    ]
    cuda, cache = torch.cuda.is_available() and args.device != "cpu", os.environ.get("ARTKIT_CACHE_DIR")
    seconds, peaks = [], []
    for i, run in enumerate(runs):
        os.environ["ARTKIT_CACHE_DIR"] = str(checkpoint.parent / f"cache_{i}")  # cold: each decodes every image
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
        peaks.append(torch.cuda.max_memory_allocated() if cuda else 0)
    if cache is None:
        os.environ.pop("ARTKIT_CACHE_DIR")
    else:
        os.environ["ARTKIT_CACHE_DIR"] = cache
    return seconds[1] / seconds[0], (peaks[1] / peaks[0] if cuda else None)


def fused_optimizer(device: str) -> bool:
    """Whether artkit's optimiser runs torch's fused kernels on ``device``."""
    from artkit.engine.optim import fused_kernels_for

    target = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
    return fused_kernels_for(torch.nn.Linear(1, 1).to(target))


def timm_train_images_per_s(
    script: str, data: Path, args, amp: str, out: Path, workers: int, env: dict | None = None
) -> float | None:
    """timm's train.py on a folder-per-class copy of the training images, with ``workers`` loader processes (and
    ``env``, this process's environment by default): images/s of its last epoch, from its own log."""
    import shutil

    import pandas as pd

    folders = out / "timm_data"
    if not folders.exists():
        table = pd.read_csv(data / "train.csv")
        for split, rows in (("train", table), ("validation", table.head(128))):  # its rate is the training's
            for row in rows.itertuples(index=False):
                target = folders / split / str(row.artist).replace("/", "_")
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(data / row.img_path, target / Path(row.img_path).name)
    cmd = [sys.executable, script, "--data-dir", str(folders), "--model", args.model, "--num-classes", "5"]
    cmd += ["--img-size", str(args.img_size), "--batch-size", str(args.batch), "--epochs", str(args.epochs)]
    cmd += ["--opt", "adamw", "--lr", "3e-3", "--workers", str(workers), "--channels-last"]
    if fused_optimizer(args.device):  # torch's fused AdamW, as artkit uses it (train.py's --opt-kwargs)
        cmd += ["--opt-kwargs", "fused=True"]
    cmd += ["--output", str(out / "timm_out"), "--experiment", f"w{workers}_{amp}"]
    if amp != "off":
        cmd += ["--amp", "--amp-dtype", {"bf16": "bfloat16", "fp16": "float16"}[amp]]
    cmd += ["--log-interval", "1", "--device", "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        print(f"timm train.py failed ({amp}): {done.stderr[-500:]}")
        return None
    # its last epoch's mean rate over the epoch's updates (data waits included), like artkit's results.csv
    rates = re.findall(r"Train: \d+ .*?\(\s*[\d.]+s,\s*([\d.]+)/s\)", done.stdout + done.stderr)
    return float(rates[-1]) if rates else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes: checks the script, measures nothing")
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=30, help="timed steps of the bare loops")
    p.add_argument("--workers", type=int, help="artkit's loader processes (default: artkit's own choice)")
    p.add_argument(
        "--timm-workers",
        default="artkit,4",
        help="timm's loader processes, comma-separated; the fastest counts ('artkit': artkit's count; 4 is timm's "
        "default)",
    )
    p.add_argument("--train-images", type=int, default=640, help="training images (the demo's, copied)")
    p.add_argument("--device", default="auto")
    p.add_argument("--timm-train", help="path to timm's train.py (from the timm repository)")
    p.add_argument("--predict-images", type=int, default=2048, help="test images predict runs over")
    p.add_argument("--amp-modes", help="comma-separated AMP modes to measure (default: every one the device has)")
    p.add_argument("--skip-compile", action="store_true", help="leave out --compile (minutes of compiling on CPU)")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "gpu.csv"))
    args = p.parse_args()
    if args.dry:
        import functools

        args.model, args.img_size, args.batch, args.epochs, args.steps = "test_efficientnet", 32, 8, 1, 3
        args.workers, args.device, args.predict_images, args.train_images = 0, "cpu", 64, 0
        torch.compile = functools.partial(torch.compile, backend="eager")  # the path, not the compiler
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else args.device)
    if device.type == "auto":
        device = torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    from artkit.data.synthetic import make_demo_dataset

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARTKIT_CACHE_DIR"] = str(Path(tmp) / "cache")  # a cold decode cache, removed afterwards
        data = make_demo_dataset(Path(tmp) / "data")
        train_data = train_set(data, args.train_images) if args.train_images else data
        from artkit.system import loader_workers

        workers = loader_workers(device.type) if args.workers is None else args.workers
        timm_counts = sorted({workers if w == "artkit" else int(w) for w in args.timm_workers.split(",")})
        modes = args.amp_modes.split(",") if args.amp_modes else amp_modes(device)
        setup = dict(device=name, dry=args.dry, model=args.model, img_size=args.img_size, batch=args.batch)
        for k, amp in enumerate(modes):
            bare = bare_images_per_s(args.model, args.img_size, args.batch, device, amp, True, args.steps)
            ours = artkit_train_images_per_s(train_data, Path(tmp) / "runs", args, amp)
            # the mean of a bare step just before and just after: a machine that slows down slows both sides
            bare = (bare + bare_images_per_s(args.model, args.img_size, args.batch, device, amp, True, args.steps)) / 2
            forward = bare_images_per_s(args.model, args.img_size, args.batch, device, amp, False, args.steps)
            fused = bare_images_per_s(args.model, args.img_size, args.batch, device, amp, False, args.steps, True)
            best = Path(tmp) / "runs" / f"amp_{amp}" / "best.pt"
            predict, predict_warm = artkit_predict_images_per_s(best, data, args, amp)
            timm_ips = None
            if args.timm_train:
                rates = [
                    timm_train_images_per_s(args.timm_train, train_data, args, amp, Path(tmp), w) for w in timm_counts
                ]
                timm_ips = max((r for r in rates if r), default=None)
            uncached = cached = None
            if k == 0:  # the two side by side: against the first run, minutes earlier, drift read as 0.91-0.93x
                uncached = artkit_train_images_per_s(train_data, Path(tmp) / "runs", args, amp, "off")
                cached = artkit_train_images_per_s(train_data, Path(tmp) / "runs_again", args, amp)
            row = append_row(
                args.results,
                invocation(),
                **setup,
                amp=amp,
                bare_step_ips=round(bare, 1),
                artkit_train_ips=round(ours, 1),
                train_vs_bare=round(ours / bare, 3),
                timm_train_ips=round(timm_ips, 1) if timm_ips else None,
                timm_workers=args.timm_workers if timm_ips else None,
                workers=workers,
                train_images=args.train_images,
                artkit_vs_timm=round(ours / timm_ips, 3) if timm_ips else None,
                bare_forward_ips=round(forward, 1),
                predict_ips=round(predict, 1),
                predict_vs_forward=round(predict / forward, 3),
                predict_images=args.predict_images,
                bare_fused_forward_ips=round(fused, 1),
                predict_vs_fused_forward=round(predict / fused, 3),
                predict_warm_ips=round(predict_warm, 1),
                predict_warm_vs_forward=round(predict_warm / forward, 3),
                train_cache_off_ips=round(uncached, 1) if uncached else None,
                cache_vs_off=round(cached / uncached, 3) if uncached else None,
            )
            print(
                f"{name} amp {amp}: train {row['artkit_train_ips']} img/s = {row['train_vs_bare']}x a bare step"
                + (f", {row['artkit_vs_timm']}x timm train.py" if timm_ips else "")
                + f"; predict {row['predict_ips']} img/s = {row['predict_vs_forward']}x a bare forward"
                + f" ({row['predict_vs_fused_forward']}x a bare forward of the fused model)"
                + f", {row['predict_warm_vs_forward']}x with the decode cache filled"
                + (f"; the decode cache trains {row['cache_vs_off']}x --cache off" if uncached else "")
            )
            if k == 0:
                first = (amp, ours, best)
        # a row of its own, after the modes' rows: a run stopped at its time limit keeps those
        amp, ours, best = first
        ensemble, memory = ensemble_vs_predict(best, data, args, amp)
        append_row(
            args.results,
            invocation(),
            **setup,
            amp=amp,
            predict_images=args.predict_images,
            ensemble_vs_predict=round(ensemble, 3),
            ensemble_memory_vs_predict=round(memory, 3) if memory else None,
        )
        print(
            f"{name} amp {amp}: a 4-member ensemble takes {ensemble:.3f}x one predict's time"
            + (f" and {memory:.3f}x its GPU peak memory" if memory else "")
        )
        if not args.skip_compile:  # last: minutes of compiling must not cost the rows above
            from artkit.errors import ArtkitError

            failed = ""
            try:
                compiled = artkit_train_images_per_s(train_data, Path(tmp) / "runs", args, amp, compile=True)
            except ArtkitError as exc:  # no compiler or Triton on the machine: a finding, not a reason to lose the run
                compiled, failed = None, f"--compile failed: {exc.message}"
            append_row(
                args.results,
                invocation(),
                **setup,
                amp=amp,
                artkit_train_ips=round(ours, 1),
                train_compile_ips=round(compiled, 1) if compiled else None,
                compile_vs_default=round(compiled / ours, 3) if compiled else None,
                note=failed or None,
            )
            print(
                f"{name} amp {amp}: "
                + (failed or f"--compile trains {compiled / ours:.3f}x the default ({compiled:.1f} img/s)")
            )


if __name__ == "__main__":
    main()
