"""Image decoding: artkit's reduced-size JPEG decode (Pillow draft) against a full decode, same files, same run.

python bench/bench_decode.py ../shared/data/dacon-sample/train --size 256 --repeat 5

Prints the timings and appends them as one row to ``--results`` (default bench/results/decode.csv).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from artkit.data.images import load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--size", type=int, default=256, help="target shorter side (artkit asks draft for >= this)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="the first N JPEGs by name (default: all)")
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "decode.csv")
    args = ap.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))[: args.limit]
    if not files:
        raise SystemExit(f"no JPEGs in {args.folder}")
    sizes = [load_image(p).size for p in files]

    def timed(min_size: int | None) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            for p in files:
                load_image(p, min_size).resize((args.size, args.size))
            best = min(best, time.perf_counter() - t)
        return best

    full, draft = timed(None), timed(args.size)
    print(f"{len(files)} JPEGs, {min(min(s) for s in sizes)}-{max(max(s) for s in sizes)} px; target {args.size} px")
    print(f"full decode + resize:  {full / len(files) * 1000:.1f} ms/image (reference)")
    print(f"draft decode + resize: {draft / len(files) * 1000:.1f} ms/image")
    print(f"speed-up: {full / draft:.2f}x")
    from results import append_row, invocation  # bench/results.py, beside this script

    append_row(
        args.results,
        invocation(),
        images=f"{len(files)} JPEGs of {args.folder}, {min(min(s) for s in sizes)}-{max(max(s) for s in sizes)} px",
        target_px=args.size,
        full_ms_per_image=f"{full / len(files) * 1000:.1f}",
        draft_ms_per_image=f"{draft / len(files) * 1000:.1f}",
        speedup=f"{full / draft:.2f}",
    )


if __name__ == "__main__":
    main()
