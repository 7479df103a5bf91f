"""bf16 or fp32 on this CPU, for training and for inference? A bare training step (forward, backward, AdamW) and a
bare no-grad forward, on one pre-made channels_last batch, under bf16 autocast against fp32, alternated
``--pairs`` times so that a machine that slows down during the run slows both.

    python bench/bench_amp_cpu.py --pairs 3

``--amp auto`` reads its per-phase choice from results like these (``CPU_BF16_SPEED`` in
``artkit.engine.device``), keyed by the bf16 instructions the CPU has (``units``: AMX, AVX512-BF16 or none).
One row per phase (bench/results/amp_cpu.csv): the median of the pairs' ratios, and their range.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_gpu import bare_images_per_s
from results import append_row, invocation


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "amp_cpu.csv"))
    args = p.parse_args()
    from artkit.engine.device import cpu_bf16_units

    cpu = torch.device("cpu")
    for phase, train, steps in (("inference", False, 30), ("train", True, 10)):
        rates = {"off": [], "bf16": []}
        for _ in range(args.pairs):
            for amp in rates:
                rates[amp].append(bare_images_per_s(args.model, args.img_size, args.batch, cpu, amp, train, steps))
        ratios = [b / f for b, f in zip(rates["bf16"], rates["off"])]
        row = append_row(
            args.results,
            invocation(),
            units=cpu_bf16_units() or "none",
            phase=phase,
            model=args.model,
            img_size=args.img_size,
            batch=args.batch,
            threads=torch.get_num_threads(),
            pairs=args.pairs,
            fp32_ips=round(statistics.median(rates["off"]), 1),
            bf16_ips=round(statistics.median(rates["bf16"]), 1),
            bf16_vs_fp32=round(statistics.median(ratios), 3),
            lowest=round(min(ratios), 3),
            highest=round(max(ratios), 3),
        )
        print(f"{phase}: bf16 {row['bf16_vs_fp32']}x fp32 ({row['lowest']}-{row['highest']}), units {row['units']}")


if __name__ == "__main__":
    main()
