"""artkit train against timm's own train.py and a bare step, in alternating rounds: how much faster (or slower)
artkit trains than timm's reference script on the same work, with the spread of the machine's own noise.

    python bench/bench_vs_timm.py --timm-train bench/_work/timm_train.py --rounds 4

Each round measures, one after the other, a bare step, ``artkit train``, timm's ``train.py`` (at each loader
process count of ``--timm-workers``: the fastest counts) and a bare step again; the next round runs timm before
artkit, so a machine that speeds up or slows down during the run favours neither. The work is bench_gpu.py's:
the same images (copies of the demo's), model, size, batch, epochs, AdamW with the same kernels, channels_last;
each side's rate is its last epoch's images/s. One CSV row per round (bench/results/vs_timm.csv), and the
median of the rounds' ratios printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_gpu import artkit_train_images_per_s, bare_images_per_s, timm_train_images_per_s, train_set
from results import append_row, invocation

from artkit.system import KEPT_BLOCK_BYTES, TRIM_THRESHOLD_BYTES

# artkit's malloc setting (artkit.system.keep_freed_memory) in glibc's own variables, for a process artkit does not run
TUNED_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(KEPT_BLOCK_BYTES),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timm-train", required=True, help="path to timm's train.py (from the timm repository)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps", type=int, default=20, help="timed steps of the bare step")
    p.add_argument("--train-images", type=int, default=640)
    p.add_argument("--workers", type=int, help="artkit's loader processes (default: artkit's own choice)")
    p.add_argument("--timm-workers", default="artkit,4", help="timm's loader processes, comma-separated")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    p.add_argument(
        "--timm-malloc",
        default="system",
        choices=["system", "artkit"],
        help="timm's malloc: glibc's own, or artkit's setting through glibc's variables (how much is the allocator)",
    )
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "vs_timm.csv"))
    args = p.parse_args()
    device = torch.device(args.device)
    from artkit.data.synthetic import make_demo_dataset
    from artkit.system import keep_freed_memory, loader_workers

    tuned = keep_freed_memory()  # the bare step runs with artkit's allocator: artkit against bare is the loop alone
    timm_env = dict(os.environ, **(TUNED_MALLOC_ENV if args.timm_malloc == "artkit" else {}))
    workers = loader_workers(device.type) if args.workers is None else args.workers
    timm_counts = sorted({workers if w == "artkit" else int(w) for w in args.timm_workers.split(",")})
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARTKIT_CACHE_DIR"] = str(Path(tmp) / "cache")
        data = train_set(make_demo_dataset(Path(tmp) / "data"), args.train_images)

        def bare() -> float:
            return bare_images_per_s(args.model, args.img_size, args.batch, device, args.amp, True, args.steps)

        def ours(k: int) -> float:
            return artkit_train_images_per_s(data, Path(tmp) / f"runs{k}", args, args.amp)

        def timm(k: int) -> float:
            out = Path(tmp) / f"timm{k}"
            rates = [
                timm_train_images_per_s(args.timm_train, data, args, args.amp, out, w, timm_env) for w in timm_counts
            ]
            return max(r for r in rates if r)

        for k in range(args.rounds):
            before = bare()
            sides = {}
            for side in ("artkit", "timm") if k % 2 == 0 else ("timm", "artkit"):
                sides[side] = ours(k) if side == "artkit" else timm(k)
            step = (before + bare()) / 2
            ratios.append(sides["artkit"] / sides["timm"])
            append_row(
                args.results,
                invocation(),
                round=k,
                first="artkit" if k % 2 == 0 else "timm",
                device=args.device,
                model=args.model,
                img_size=args.img_size,
                batch=args.batch,
                amp=args.amp,
                workers=workers,
                timm_workers=",".join(map(str, timm_counts)),
                malloc=f"artkit {'tuned' if tuned else 'system'}, timm {args.timm_malloc}",
                bare_step_ips=round(step, 1),
                artkit_train_ips=round(sides["artkit"], 1),
                timm_train_ips=round(sides["timm"], 1),
                artkit_vs_timm=round(ratios[-1], 3),
                artkit_vs_bare=round(sides["artkit"] / step, 3),
                timm_vs_bare=round(sides["timm"] / step, 3),
            )
            print(
                f"round {k}: bare {step:.1f}, artkit {sides['artkit']:.1f}, timm {sides['timm']:.1f} img/s: "
                f"artkit {ratios[-1]:.3f}x timm",
                flush=True,
            )
    print(f"median of {len(ratios)} rounds: artkit {statistics.median(ratios):.3f}x timm's train.py")


if __name__ == "__main__":
    main()
