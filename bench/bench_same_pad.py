"""TensorFlow 'same' padding: timm's (pad the input, a copy) against artkit's inference copy (pad the kernel), for a
no-grad forward and for a training step, in alternating rounds of the same run.

    python bench/bench_same_pad.py                      # tf_efficientnet_lite0 at 128 and 224 px, batch 16
    python bench/bench_same_pad.py --amp bf16           # under bf16 autocast (artkit's inference on AMX CPUs)

Each round times both models back to back, so a machine that slows down slows both; the ratio is the median of
the rounds' ratios. One CSV row per (size, phase) (bench/results/same_pad.csv).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from results import append_row, invocation

from artkit.models.factory import create_model
from artkit.models.same_pad import pad_kernels_not_inputs


def images_per_s(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool, steps: int, amp: str) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if train else None
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16")

    def step() -> None:
        if opt is None:
            with torch.no_grad(), autocast:
                model(x)
            return
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    step()  # warm-up: kernels are chosen on the first call
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--sizes", default="128,224")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=8, help="timed steps per model and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--amp", default="off", choices=["off", "bf16"])
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "same_pad.csv"))
    args = p.parse_args()
    timm_model = create_model(args.model, num_classes=50)
    padless = copy.deepcopy(timm_model)
    swapped = pad_kernels_not_inputs(padless)
    for model in (timm_model, padless):
        model.to(memory_format=torch.channels_last)
    for size in (int(s) for s in args.sizes.split(",")):
        x = torch.randn(args.batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 50, (args.batch,))
        for phase, train in (("forward", False), ("train", True)):
            rates: dict[str, list[float]] = {"timm": [], "padless": []}
            for _ in range(args.rounds):
                for name, model in (("timm", timm_model), ("padless", padless)):
                    rates[name].append(images_per_s(model.train(train), x, y, train, args.steps, args.amp))
            ratio = statistics.median(b / a for a, b in zip(rates["timm"], rates["padless"]))
            row = append_row(
                args.results,
                invocation(),
                model=args.model,
                img_size=size,
                batch=args.batch,
                phase=phase,
                amp=args.amp,
                convs=swapped,
                rounds=args.rounds,
                timm_ips=round(statistics.median(rates["timm"]), 1),
                padless_ips=round(statistics.median(rates["padless"]), 1),
                padless_vs_timm=round(ratio, 3),
                lowest=round(min(b / a for a, b in zip(rates["timm"], rates["padless"])), 3),
                highest=round(max(b / a for a, b in zip(rates["timm"], rates["padless"])), 3),
            )
            print(f"{size} px {phase}: kernel padding {row['padless_vs_timm']}x timm's input padding")


if __name__ == "__main__":
    main()
