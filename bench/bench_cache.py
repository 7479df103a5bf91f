"""The decode cache: loader-only throughput (decode + training augmentation, one process) with the cache against
without it, same files, same run.

python bench/bench_cache.py ../shared/data/paintings50/train --limit 600
python bench/bench_cache.py ../shared/data/dacon-sample/train --repeat 5
python bench/bench_cache.py ../shared/data/paintings50/train --limit 1000 --stage predict

Three timed passes over the same images: decoding every time (the reference, best of ``--repeat``), the pass
that fills the cache, and reading the filled cache (best of ``--repeat``). As in artkit, the cache holds the output
of the pipeline's fixed first operations (a resize, a centre crop) where it has them: all of the ``val`` and
``predict`` pipelines, the resize of ``--aug light``'s training pipeline. Appends one row to ``--results`` (default
bench/results/cache.csv).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from results import append_row, invocation

from artkit.data.dataset import ImageTable
from artkit.data.decode_cache import DecodeCache
from artkit.data.transforms import create_transform, decode_size


def images_per_second(table: ImageTable, repeat: int) -> float:
    best = float("inf")
    for r in range(repeat):
        start = time.perf_counter()
        for i in range(len(table)):
            table[(i, r * len(table) + i)]  # training samples: (index, augmentation seed)
        best = min(best, time.perf_counter() - start)
    return len(table) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="at most this many images (sorted by name)")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--aug", default="crop", help="the training augmentation preset (artkit's default: crop)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--stage",
        default="train",
        choices=["train", "val", "predict"],
        help="whose pipeline: the training "
        "augmentation (default), the preset's validation view, or predict's plain resize",
    )
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "cache.csv")
    args = ap.parse_args()
    files = sorted(str(p) for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[: args.limit]
    if not files:
        raise SystemExit(f"no images in {args.folder}")
    decode = decode_size(args.aug, args.img_size, args.stage)
    transform = create_transform(args.aug, args.img_size, args.stage)
    with tempfile.TemporaryDirectory() as tmp:
        cache = DecodeCache(Path(tmp) / "decoded")
        plain = images_per_second(ImageTable(files, None, transform, decode), args.repeat)
        cached_table = ImageTable(files, None, transform, decode, cache=cache)  # fixed operations' outputs kept
        filling = images_per_second(cached_table, 1)
        cached = images_per_second(cached_table, args.repeat)
        stored = sum(p.stat().st_size for p in cache.folder.rglob("*") if p.is_file())
    pipeline = f"{args.aug} {args.stage} at {args.img_size} px"
    print(f"{len(files)} images from {args.folder}, decoded at >= {decode} px, {pipeline}")
    print(f"  decoding every time: {plain:8.1f} images/s (reference)")
    print(f"  filling the cache:   {filling:8.1f} images/s ({filling / plain:.2f}x)")
    print(f"  reading the cache:   {cached:8.1f} images/s ({cached / plain:.2f}x)")
    print(f"  cache size: {stored / 1024**2:.0f} MB ({stored / len(files) / 1024:.0f} KB per image)")
    append_row(
        args.results,
        invocation(),
        folder=f"{args.folder.parent.name}/{args.folder.name}",
        images=len(files),
        decode_px=decode,
        img_size=args.img_size,
        aug=args.aug,
        stage=args.stage,
        plain_img_s=f"{plain:.1f}",
        filling_x=f"{filling / plain:.2f}",
        cached_x=f"{cached / plain:.2f}",
        kb_per_image=f"{stored / len(files) / 1024:.0f}",
    )


if __name__ == "__main__":
    main()
