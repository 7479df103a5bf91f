"""Benchmark ``artkit eda`` and ``artkit clean``: cold (fresh cache) and warm, end to end through the
CLI, plus the scanner's design choices measured against each other in the same run:
processes vs threads, and reduced-size (draft) JPEG decoding vs full decoding.

    python bench/bench_eda_clean.py /work/shared/data/paintings50 [--workers N] [--repeat 3] [--skip-variants]

Prints a Markdown table; every ratio compares two numbers taken in this one run. Each step is also appended
as a row to ``--results`` (default bench/results/eda_clean.csv).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_cli(args: list[str], cache: Path) -> float:
    env = dict(os.environ, ARTKIT_CACHE_DIR=str(cache), NO_ALBUMENTATIONS_UPDATE="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "artkit", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def scan_once(paths: list[str], workers: int, executor: str, cache: Path, full_decode: bool = False) -> float:
    import artkit.qa.scan as scan

    saved = scan.THUMB_MIN_SIDE
    scan.THUMB_MIN_SIDE = 0 if full_decode else saved  # 0: load_image decodes at full size
    try:
        start = time.perf_counter()
        scan.scan_images(paths, workers=workers, cache_folder=cache, executor=executor)
        return time.perf_counter() - start
    finally:
        scan.THUMB_MIN_SIDE = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="dataset folder (train.csv or class folders)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-variants", action="store_true", help="only the end-to-end CLI timings")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is reported")
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "eda_clean.csv")
    args = ap.parse_args()

    from artkit.data.layout import discover

    load_before = os.getloadavg()[0]
    inputs = discover(args.data, tolerant=True)
    paths = inputs.train["path"].tolist() + (inputs.test["path"].tolist() if inputs.test is not None else [])
    existing = sum(1 for p in set(paths) if p and os.path.exists(p))
    work = Path(tempfile.mkdtemp(prefix="artkit-bench-"))
    rows: list[tuple[str, float]] = []
    w = str(args.workers)
    fresh = iter(range(10**6))

    def new_cache() -> Path:
        return work / f"cache{next(fresh)}"

    def best(fn) -> float:  # the minimum of --repeat runs: the least disturbed by other load
        return min(fn() for _ in range(args.repeat))

    def cli_cold_then_warm(cmd: str) -> tuple[float, float]:
        colds, warms = [], []
        for _ in range(args.repeat):
            cache = new_cache()
            colds.append(run_cli([cmd, args.data, "--out", str(work / cmd), "-w", w], cache))
            warms.append(run_cli([cmd, args.data, "--out", str(work / cmd), "-w", w], cache))
        return min(colds), min(warms)

    try:
        for cmd in ("eda", "clean"):
            cold, warm = cli_cold_then_warm(cmd)
            rows += [(f"artkit {cmd}, cold cache", cold), (f"artkit {cmd}, warm cache", warm)]
        if not args.skip_variants:
            cache = new_cache()
            rows.append(
                (
                    "scan only, processes, draft decode (default), cold",
                    best(lambda: scan_once(paths, args.workers, "process", new_cache())),
                )
            )
            scan_once(paths, args.workers, "process", cache)
            rows.append(("scan only, processes, warm", best(lambda: scan_once(paths, args.workers, "process", cache))))
            rows.append(
                (
                    "scan only, threads, draft decode, cold",
                    best(lambda: scan_once(paths, args.workers, "thread", new_cache())),
                )
            )
            rows.append(
                (
                    "scan only, processes, full-size decode, cold",
                    best(lambda: scan_once(paths, args.workers, "process", new_cache(), full_decode=True)),
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    t = dict(rows)
    ratios: dict[
        str, str
    ] = {}  # each compared step's ratio for the CSV, as the lines printed below say it; the rest are references
    for cmd in ("eda", "clean"):
        cold, warm = t[f"artkit {cmd}, cold cache"], t[f"artkit {cmd}, warm cache"]
        ratios[f"artkit {cmd}, warm cache"] = f"{cold / warm:.1f}x faster than cold"
    print(
        f"data: {args.data} ({len(inputs.train):,} train rows, "
        f"{len(inputs.test) if inputs.test is not None else 0:,} test rows, {existing:,} image files present)"
    )
    print(
        f"machine: {os.cpu_count()} CPU cores ({cpu_model()}), Python {platform.python_version()}, "
        f"--workers {args.workers}, best of {args.repeat}, 1-min load average before {load_before:.2f}, "
        f"after {os.getloadavg()[0]:.2f}"
    )
    print("\n| step | wall time (s) |\n| --- | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} |")
    print()
    print(f"- eda warm vs cold: {t['artkit eda, cold cache'] / t['artkit eda, warm cache']:.1f}x faster")
    print(f"- clean warm vs cold: {t['artkit clean, cold cache'] / t['artkit clean, warm cache']:.1f}x faster")
    if not args.skip_variants:
        base = t["scan only, processes, draft decode (default), cold"]
        print(f"- scan warm vs cold: {base / t['scan only, processes, warm']:.0f}x faster")
        print(f"- processes vs threads (cold scan): {t['scan only, threads, draft decode, cold'] / base:.2f}x faster")
        print(
            f"- draft vs full-size decode (cold scan): "
            f"{t['scan only, processes, full-size decode, cold'] / base:.2f}x faster"
        )
        ratios["scan only, processes, warm"] = f"{base / t['scan only, processes, warm']:.0f}x faster than cold"
        ratios["scan only, threads, draft decode, cold"] = (
            f"processes {t['scan only, threads, draft decode, cold'] / base:.2f}x faster"
        )
        ratios["scan only, processes, full-size decode, cold"] = (
            f"draft {t['scan only, processes, full-size decode, cold'] / base:.2f}x faster"
        )
    from results import append_row, invocation  # bench/results.py, beside this script

    note = (
        f"Python {platform.python_version()}; --workers {args.workers}; fastest of {args.repeat} runs; 1-minute load "
        f"average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    for name, sec in rows:
        ratio = ratios.get(name, "reference")
        append_row(
            args.results,
            invocation(),
            data=Path(args.data).name,
            step=name,
            seconds=f"{sec:.2f}",
            ratio=ratio,
            note=note,
        )


if __name__ == "__main__":
    main()
