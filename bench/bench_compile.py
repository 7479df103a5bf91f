"""What ``torch.compile`` buys on this machine: a bare training step and a bare no-grad forward (of the model as
trained, and with its convolutions and batch norms fused, as artkit's inference runs it), compiled against eager,
measured in the same run with artkit's malloc setting, with the compile time counted against the gain.

    python bench/bench_compile.py                       # tf_efficientnet_lite0, 128 px, batch 32, channels_last
    python bench/bench_compile.py --img-size 224 --batch 64 --device cuda
    python bench/bench_compile.py --amp bf16 --phases forward,fused   # bf16, as `--amp auto` infers on AMX

One row per phase (train, forward, fused) in ``--results`` (default bench/results/compile.csv): images/s eager and
compiled, their ratio, the seconds the first compiled calls took, and ``break_even_s``: how long a run must be for
compiling to pay for itself (inf when it never does).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation

from artkit.system import keep_freed_memory


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool, amp: str):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp == "bf16")

    def step() -> None:
        if not train:
            with torch.no_grad(), autocast:
                model(x)
            return
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def images_per_s(step, batch: int, steps: int, device: torch.device) -> tuple[float, float]:
    """(images/s over ``steps`` steps after the warm-up, seconds of the warm-up's first call)."""
    start = time.perf_counter()
    step()  # a compiled model compiles here
    first = time.perf_counter() - start
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start), first


def measure(args, phase: str, kernels: str | None = None) -> tuple[float, float]:
    """(images/s, seconds of the first call) of ``phase``, eager, or compiled into the empty folder ``kernels``."""
    import timm

    from artkit.models.fuse import fuse_conv_bn

    torch.manual_seed(0)
    device = torch.device(args.device)
    train = phase == "train"
    model = timm.create_model(args.model, pretrained=False, num_classes=50)
    if phase == "fused":
        model = fuse_conv_bn(model, torch.randn(2, 3, args.img_size, args.img_size))[0]
    model = model.to(device)
    model = model.to(memory_format=torch.channels_last).train(train)
    net = model
    if kernels:  # a cold compile, as a user's first run has: no kernels kept on disk by an earlier run
        torch._dynamo.reset()
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = kernels
        net = torch.compile(model)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 50, (args.batch,), device=device)
    return images_per_s(make_step(net, x, y, train, args.amp), args.batch, args.steps, device)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["off", "bf16"], default="off", help="bf16 autocast around both, or fp32")
    p.add_argument("--phases", default="train,forward,fused", help="which of train, forward and fused to measure")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "compile.csv"))
    args = p.parse_args()
    keep_freed_memory()  # artkit's malloc setting, which every artkit command makes
    for phase in args.phases.split(","):
        eager, eager_first = measure(args, phase)
        with tempfile.TemporaryDirectory(prefix="bench_compile_") as kernels:
            comp, comp_first = measure(args, phase, kernels)
        compile_s = max(comp_first - eager_first, 0.0)
        # seconds of eager work after which the compiled run is ahead: compile_s / (1 - eager/compiled)
        gain = 1 - eager / comp
        break_even = compile_s / gain if gain > 0 else float("inf")
        row = append_row(
            args.results,
            invocation(),
            device=torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            threads=torch.get_num_threads(),
            torch=torch.__version__,
            model=args.model,
            img_size=args.img_size,
            batch=args.batch,
            phase=phase,
            amp=args.amp,
            eager_ips=round(eager, 1),
            compiled_ips=round(comp, 1),
            compiled_vs_eager=round(comp / eager, 3),
            compile_s=round(compile_s, 1),
            break_even_s=round(break_even, 1) if break_even != float("inf") else "inf",
        )
        print(
            f"{phase}: eager {row['eager_ips']} img/s, compiled {row['compiled_ips']} img/s "
            f"= {row['compiled_vs_eager']}x; compiling took {row['compile_s']} s; "
            f"pays off after {row['break_even_s']} s"
        )


if __name__ == "__main__":
    main()
