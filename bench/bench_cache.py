"""The decode cache: loader-only throughput (decode + training augmentation, one process) with the cache against
without it, same files, same run.

python bench/bench_cache.py ../shared/data/paintings50/train --limit 600
python bench/bench_cache.py ../shared/data/dacon-sample/train --repeat 5
python bench/bench_cache.py ../shared/data/paintings50/train --limit 1000 --stage predict

Timed passes over the same images: decoding every time (the reference), the pass that fills the cache, then
``--repeat`` rounds of one pass decoding every time and one reading the filled cache, in alternating order, with the
same augmentation draws. This machine's speed drifts by a third within minutes, so the ratio is each round's own
(the two passes seconds apart), and the row keeps their median and range. As in artkit, the cache holds the output
of the pipeline's fixed first operations (a resize, a centre crop) where it has them: all of the ``val`` and
``predict`` pipelines, the resize of ``--aug light``'s training pipeline. Appends one row to ``--results`` (default
bench/results/cache.csv).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from results import append_row, invocation

from artkit.data.dataset import ImageTable
from artkit.data.decode_cache import DecodeCache
from artkit.data.transforms import create_transform, decode_size


def pass_seconds(table: ImageTable, draws: int) -> float:
    """One pass over ``table`` as training samples (index, augmentation seed), the seeds of round ``draws``."""
    start = time.perf_counter()
    for i in range(len(table)):
        table[(i, draws * len(table) + i)]
    return time.perf_counter() - start


def alternated_rounds(plain: ImageTable, cached: ImageTable, rounds: int) -> list[tuple[float, float]]:
    """(decoding, reading the cache) seconds of each round; odd rounds read the cache first, so a drift of the
    machine's speed favours neither."""
    times = []
    for r in range(rounds):
        if r % 2:
            read = pass_seconds(cached, r)
            times.append((pass_seconds(plain, r), read))
        else:
            times.append((pass_seconds(plain, r), pass_seconds(cached, r)))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit", type=int, default=None, help="at most this many images (sorted by name)")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--aug", default="crop", help="the training augmentation preset (artkit's default: crop)")
    ap.add_argument("--repeat", type=int, default=5, help="alternated rounds")
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
        plain_table = ImageTable(files, None, transform, decode)
        cached_table = ImageTable(files, None, transform, decode, cache=cache)  # fixed operations' outputs kept
        pass_seconds(plain_table, 0)  # the files in the page cache, as they are for the passes that follow
        filling_s = pass_seconds(cached_table, 0)
        times = alternated_rounds(plain_table, cached_table, args.repeat)
        stored = sum(p.stat().st_size for p in cache.folder.rglob("*") if p.is_file())
    plain = len(files) / statistics.median(t for t, _ in times)
    ratios = sorted(t / c for t, c in times)
    cached_x, filling_x = statistics.median(ratios), len(files) / filling_s / plain
    pipeline = f"{args.aug} {args.stage} at {args.img_size} px"
    print(f"{len(files)} images from {args.folder}, decoded at >= {decode} px, {pipeline}")
    print(f"  decoding every time: {plain:8.1f} images/s (reference, median of {len(times)} rounds)")
    print(f"  filling the cache:   {filling_x:8.2f}x")
    spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
    print(f"  reading the cache:   {cached_x:8.2f}x (median of the rounds' own ratios, {spread})")
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
        filling_x=f"{filling_x:.2f}",
        cached_x=f"{cached_x:.2f}",
        cached_x_range=spread,
        kb_per_image=f"{stored / len(files) / 1024:.0f}",
    )


if __name__ == "__main__":
    main()
