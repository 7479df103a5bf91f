"""Training and inference speed on CPU with and without channels_last memory format.

    python bench/bench_channels_last.py [--models tf_efficientnet_lite0,resnet18,...] [--img-size 128]

For each model: a bare train step (forward + backward + AdamW) and a no-grad forward on a fixed
random batch, in contiguous (NCHW, the reference) and channels_last (NHWC) memory format. The two
formats alternate within each of ``--rounds`` rounds, so a load spike on a shared machine hits both;
the figure reported is each format's best round. Random init (``pretrained=False``): speed does not
depend on the weights. Each model's two measurements are also appended as rows to ``--results`` (default
bench/results/channels_last.csv).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def images_per_s(model, x, y, channels_last: bool, train: bool, steps: int) -> float:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    crit = torch.nn.CrossEntropyLoss()
    model.train(train)

    def step():
        if train:
            loss = crit(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)

    step()  # warm-up: oneDNN picks its kernels on the first call
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tf_efficientnet_lite0,efficientnet_lite0,resnet18,convnext_atto,resnet10t")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "channels_last.csv")
    args = ap.parse_args()
    import timm
    from results import append_row, invocation  # bench/results.py, beside this script

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, {args.img_size} px")
    print(
        "| model | train NCHW img/s | train channels_last img/s | train speed-up | forward NCHW img/s "
        "| forward channels_last img/s | forward speed-up |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models.split(","):
        model = timm.create_model(name, pretrained=False, num_classes=50)
        x = torch.randn(args.batch_size, 3, args.img_size, args.img_size)
        y = torch.randint(0, 50, (args.batch_size,))
        best = {}
        for _ in range(args.rounds):
            for train in (True, False):
                for cl in (False, True):
                    v = images_per_s(model, x, y, cl, train, args.steps)
                    best[train, cl] = max(best.get((train, cl), 0.0), v)
        t0, t1, f0, f1 = best[True, False], best[True, True], best[False, False], best[False, True]
        print(
            f"| {name} | {t0:.1f} | {t1:.1f} | **{t1 / t0:.2f}x** | {f0:.1f} | {f1:.1f} | **{f1 / f0:.2f}x** |",
            flush=True,
        )
        note = f"{torch.get_num_threads()} threads, batch {args.batch_size}, {args.img_size} px, random init"
        for measure, before, after in (("train step", t0, t1), ("forward", f0, f1)):
            append_row(
                args.results,
                invocation(),
                model=name,
                measure=measure,
                contiguous=f"{before:.1f}",
                channels_last=f"{after:.1f}",
                unit="img/s",
                speedup=f"{after / before:.2f}",
                note=f"{note}; best of {args.rounds} interleaved rounds",
            )


if __name__ == "__main__":
    main()
