"""How much a 4-member ensemble costs against one member's predict: wall time and peak memory, each in a fresh
process with a cache folder of its own (so each decodes the test images), the current code against an older one
(``--reference-src``) in the same run.

    python bench/bench_ensemble_pass.py CSV [--members 4] [--reference-src DIR] [--model tf_efficientnet_lite0]

CSV: test images (``id,img_path``; e.g. bench/_work/split/holdout_crops.csv, 1,425 quarter crops of paintings).
The members are randomly initialised checkpoints of one model (speed does not depend on the weights), all at
the same size and normalisation, as the folds of a k-fold run are. ``--reference-src DIR`` runs the artkit in
DIR/src too (e.g. a git worktree of the commit before ensembles ran in one pass). One row per code version goes
to ``--results`` (default bench/results/ensemble_pass.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation

RUN = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
from artkit.inference.config import EnsembleConfig, PredictConfig
from artkit.inference.ensemble import run_ensemble
from artkit.inference.predict import run_predict
opts = dict(csv={csv!r}, batch_size=64, workers={workers}, tta="none", device="cpu")
start = time.perf_counter()
if {members!r}:
    run_ensemble(EnsembleConfig(members={members!r}, out={out!r}, **opts))
else:
    run_predict(PredictConfig(checkpoint={checkpoint!r}, out={out!r}, **opts))
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def make_members(folder: Path, model: str, size: int, n: int) -> list[str]:
    from artkit.engine.checkpoint import ModelMeta, make_checkpoint
    from artkit.models.factory import create_model
    from artkit.writer import save_torch

    classes = [f"artist {i}" for i in range(50)]
    paths = []
    for i in range(n):
        net = create_model(model, len(classes))
        meta = ModelMeta(model_name=model, classes=classes, img_size=size, mean=[0.5] * 3, std=[0.5] * 3, config={})
        paths.append(str(folder / f"member{i}.pt"))
        save_torch(make_checkpoint(meta, net.state_dict(), {}, 1), paths[-1])
    return paths


def measure(src: str, csv: str, out: Path, workers: int, members: list[str], checkpoint: str = "") -> dict:
    code = RUN.format(src=src, csv=csv, workers=workers, members=members, checkpoint=checkpoint, out=str(out))
    with tempfile.TemporaryDirectory() as cache:  # cold: each run decodes the test images itself
        env = {**os.environ, "ARTKIT_CACHE_DIR": cache}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reference-src", help="a folder whose src/ holds the artkit to compare with")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "ensemble_pass.csv"))
    args = p.parse_args()
    here = str(Path(__file__).resolve().parents[1] / "src")
    versions = [("current", here)] + (
        [("reference", str(Path(args.reference_src) / "src"))] if args.reference_src else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        import pandas as pd

        images = Path(tmp) / "images.csv"  # id,img_path only: a label column would be scored, not timed
        pd.read_csv(args.csv, dtype=str)[["id", "img_path"]].to_csv(images, index=False)
        args.csv = str(images)
        members = make_members(Path(tmp), args.model, args.img_size, args.members)
        for label, src in versions:
            one = measure(src, args.csv, Path(tmp) / "one.csv", args.workers, [], members[0])
            many = measure(src, args.csv, Path(tmp) / "many.csv", args.workers, members)
            row = append_row(
                args.results,
                invocation(),
                code=label,
                model=args.model,
                img_size=args.img_size,
                members=args.members,
                predict_s=round(one["seconds"], 1),
                ensemble_s=round(many["seconds"], 1),
                time_ratio=round(many["seconds"] / one["seconds"], 3),
                predict_peak_mb=round(one["peak_mb"]),
                ensemble_peak_mb=round(many["peak_mb"]),
                memory_ratio=round(many["peak_mb"] / one["peak_mb"], 3),
            )
            print(
                f"{label}: {args.members}-member ensemble {row['time_ratio']}x one predict's time, "
                f"{row['memory_ratio']}x its peak memory"
            )


if __name__ == "__main__":
    main()
