"""Ablation of training options on real paintings: one change at a time, scored on held-out quarter crops.

    python bench/ablation.py SPLIT --weights W [--rows a,b,...] [--seeds 42,1] [--budget e2|30m] [--src DIR]

SPLIT is the folder written by ``bench/make_crop_split.py`` (train.csv, holdout_crops.csv, holdout_full.csv);
W an EfficientNet-Lite0 state dict for ``tf_efficientnet_lite0`` (``bench/convert_lite0.py --no-fix``).

Every row is ``artkit train`` on SPLIT/train.csv (its own 80/20 validation split picks best.pt) with the
common options (``tf_efficientnet_lite0 --weights W --img-size 128`` and the budget: ``--epochs 2`` or
``--time 30m``) plus the row's options, then ``artkit eval best.pt`` on the 1,425 held-out quarter crops at
half resolution (without and with ``--tta hflip``) and on the uncropped held-out paintings. Nothing of the
holdout is seen in training.

``--src DIR`` runs the artkit package found in DIR/src (a snapshot of the code, e.g. a git worktree), so the
benchmark can run while the working tree changes. Results accumulate in ``OUT/results.json`` (rows already
there are skipped; ``--redo`` runs them again) and are printed as a Markdown table; each finished row is also
appended to ``--results`` (default ``bench/results/ablation_2ep.csv`` or ``ablation_30m.csv``, by budget), the
CSV the tables of docs/benchmarks.md are generated from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"  # the CSVs the tables of docs/benchmarks.md come from

# v0.1's defaults, pinned before every row but "defaults" and the "d_" rows so that the rows mean the same
# with any artkit version (a row's own options come later and win)
V01_DEFAULTS = [
    "--aug",
    "light",
    "--sampler",
    "none",
    "--lr",
    "5e-4",
    "--layer-decay",
    "1",
    "--warmup-epochs",
    "1",
    "--label-smoothing",
    "0",
    "--no-ema",
]
# row name -> (what it changes, options added to the common ones). "base" is the old defaults (v0.1).
OLD_RECIPE = [
    "--aug",
    "crop",
    "--lr",
    "3e-3",
    "--layer-decay",
    "0.85",
    "--batch-size",
    "16",
    "--sampler",
    "sqrt",
    "--warmup-epochs",
    "0.2",
]
ROWS: dict[str, tuple[str, list[str]]] = {
    "base": ("v0.1 defaults (light aug, AdamW lr 5e-4, warmup 1 epoch, batch 32, no sampler, CE)", []),
    # augmentation
    "aug_crop": ("--aug crop", ["--aug", "crop"]),
    "aug_none": ("--aug none", ["--aug", "none"]),
    "aug_strong": ("--aug strong", ["--aug", "strong"]),
    # optimisation
    "lr_1e-3": ("--lr 1e-3", ["--lr", "1e-3"]),
    "lr_2e-3": ("--lr 2e-3", ["--lr", "2e-3"]),
    "lr_3e-3": ("--lr 3e-3", ["--lr", "3e-3"]),
    "warmup_0.2": ("--warmup-epochs 0.2", ["--warmup-epochs", "0.2"]),
    "ld_0.85": ("--layer-decay 0.85", ["--layer-decay", "0.85"]),
    "bs_16": ("--batch-size 16", ["--batch-size", "16"]),
    # imbalance and loss
    "sampler_sqrt": ("--sampler sqrt", ["--sampler", "sqrt"]),
    "sampler_balanced": ("--sampler balanced", ["--sampler", "balanced"]),
    "ls_0.1": ("--label-smoothing 0.1", ["--label-smoothing", "0.1"]),
    "cw_sqrt": ("--class-weights sqrt", ["--class-weights", "sqrt"]),
    "focal": ("--loss focal", ["--loss", "focal"]),
    # regularisation
    "cutmix": ("--cutmix 1.0", ["--cutmix", "1.0"]),
    "mixup": ("--mixup 0.2", ["--mixup", "0.2"]),
    "ema": ("--ema (decay 0.999)", ["--ema"]),
    "drop_path": ("--drop-path-rate 0.1", ["--drop-path-rate", "0.1"]),
    "dropout": ("--drop-rate 0.2", ["--drop-rate", "0.2"]),
    # resolution
    "img_96": ("--img-size 96", ["--img-size", "96"]),
    "img_160": ("--img-size 160", ["--img-size", "160"]),
    # the field's write-ups
    "field_weighted_adam": (
        "write-up: balanced sampler + inverse-weighted CE + Adam 1e-4, constant lr, early stop",
        [
            "--sampler",
            "balanced",
            "--class-weights",
            "inverse",
            "--optimizer",
            "adam",
            "--lr",
            "1e-4",
            "--weight-decay",
            "0",
            "--scheduler",
            "none",
            "--warmup-epochs",
            "0",
            "--patience",
            "3",
        ],
    ),
    "field_crop_step": (
        "write-up: quarter-crop augmentation + Adam 3e-4 + StepLR (gamma 0.5 per epoch)",
        [
            "--aug",
            "crop",
            "--optimizer",
            "adam",
            "--lr",
            "3e-4",
            "--weight-decay",
            "0",
            "--scheduler",
            "step",
            "--step-epochs",
            "1",
            "--step-gamma",
            "0.5",
            "--warmup-epochs",
            "0",
        ],
    ),
    "field_crop_step3": (
        "write-up: quarter-crop augmentation + Adam 3e-4 + StepLR (gamma 0.1 every third of the run)",
        [
            "--aug",
            "crop",
            "--optimizer",
            "adam",
            "--lr",
            "3e-4",
            "--weight-decay",
            "0",
            "--scheduler",
            "step",
            "--step-gamma",
            "0.1",
            "--warmup-epochs",
            "0",
        ],
    ),
    "field_cosine_strong": (
        "write-up: cosine lr + strong augmentation + CutMix, AdamW 1e-3",
        ["--aug", "strong", "--cutmix", "1.0", "--lr", "1e-3"],
    ),
    # the recipe of docs/benchmarks.md (v0.1) and changes to it
    "rec": ("v0.1 benchmark recipe: crop, lr 3e-3, layer decay 0.85, batch 16, sqrt sampler, warmup 0.2", OLD_RECIPE),
    "rec_lr_5e-3": ("recipe, lr 5e-3", OLD_RECIPE + ["--lr", "5e-3"]),
    "rec_lr_2e-3": ("recipe, lr 2e-3", OLD_RECIPE + ["--lr", "2e-3"]),
    "rec_ld_0.75": ("recipe, layer decay 0.75", OLD_RECIPE + ["--layer-decay", "0.75"]),
    "rec_ld_0.9": ("recipe, layer decay 0.9", OLD_RECIPE + ["--layer-decay", "0.9"]),
    "rec_bs_32": ("recipe, batch 32", OLD_RECIPE + ["--batch-size", "32"]),
    "rec_bs_8": ("recipe, batch 8", OLD_RECIPE + ["--batch-size", "8"]),
    "rec_balanced": ("recipe, balanced sampler", OLD_RECIPE + ["--sampler", "balanced"]),
    "rec_nosampler": ("recipe, no sampler", OLD_RECIPE + ["--sampler", "none"]),
    "rec_ls": ("recipe + label smoothing 0.1", OLD_RECIPE + ["--label-smoothing", "0.1"]),
    "rec_focal": ("recipe + focal loss", OLD_RECIPE + ["--loss", "focal"]),
    "rec_cw_sqrt": ("recipe + class weights sqrt", OLD_RECIPE + ["--class-weights", "sqrt"]),
    "rec_cutmix": ("recipe + CutMix 1.0", OLD_RECIPE + ["--cutmix", "1.0"]),
    "rec_ema": ("recipe + EMA 0.99", OLD_RECIPE + ["--ema", "--ema-decay", "0.99"]),
    "rec_drop_path": ("recipe + drop path 0.1", OLD_RECIPE + ["--drop-path-rate", "0.1"]),
    "rec_warmup_0": ("recipe, no warmup", OLD_RECIPE + ["--warmup-epochs", "0"]),
    "rec_warmup_0.5": ("recipe, warmup 0.5", OLD_RECIPE + ["--warmup-epochs", "0.5"]),
    "rec_img_160": ("recipe at 160 px", OLD_RECIPE + ["--img-size", "160"]),
    "rec_prog": ("recipe, progressive resizing 96 -> 128 px", OLD_RECIPE + ["--img-size-start", "96"]),
    "rec_strong": ("recipe with strong aug instead of crop", OLD_RECIPE + ["--aug", "strong"]),
    "rec_ls_ld75": (
        "recipe + label smoothing 0.1, layer decay 0.75",
        OLD_RECIPE + ["--label-smoothing", "0.1", "--layer-decay", "0.75"],
    ),
    "rec_ls_ld75_ema": (
        "recipe + label smoothing 0.1, layer decay 0.75, EMA 0.99",
        OLD_RECIPE + ["--label-smoothing", "0.1", "--layer-decay", "0.75", "--ema", "--ema-decay", "0.99"],
    ),
    "rec_img_96": ("recipe at 96 px", OLD_RECIPE + ["--img-size", "96"]),
    "rec_light": ("recipe with light aug instead of crop", OLD_RECIPE + ["--aug", "light"]),
    "rec_wd_0.01": ("recipe, weight decay 0.01", OLD_RECIPE + ["--weight-decay", "0.01"]),
    # the new defaults: no options beyond the common ones (run with --src pointing at the new code)
    "defaults": ("artkit defaults (no options)", []),
    "defaults_no_ema": ("defaults, --no-ema (the defaults before EMA was one)", ["--no-ema"]),
    # one change at a time against the new defaults (no pinning: these rows need the new code)
    "d_light": ("defaults, --aug light", ["--aug", "light"]),
    "d_strong": ("defaults, --aug strong", ["--aug", "strong"]),
    "d_cutmix": ("defaults + --cutmix 1.0", ["--cutmix", "1.0"]),
    "d_mixup": ("defaults + --mixup 0.2", ["--mixup", "0.2"]),
    "d_ema": ("defaults, --ema-decay 0.999 (fixed)", ["--ema", "--ema-decay", "0.999"]),
    "d_ema_0.99": ("defaults, --ema-decay 0.99 (fixed)", ["--ema", "--ema-decay", "0.99"]),
    "d_focal": ("defaults, --loss focal", ["--loss", "focal"]),
    "d_ls_0": ("defaults, --label-smoothing 0", ["--label-smoothing", "0"]),
    "d_cw_sqrt": ("defaults + --class-weights sqrt", ["--class-weights", "sqrt"]),
    "d_sampler_none": ("defaults, --sampler none", ["--sampler", "none"]),
    "d_ld_1": ("defaults, --layer-decay 1 (off)", ["--layer-decay", "1"]),
    "d_lr_1e-3": ("defaults, --lr 1e-3", ["--lr", "1e-3"]),
    "d_lr_5e-3": ("defaults, --lr 5e-3", ["--lr", "5e-3"]),
    "d_warmup_1": ("defaults, --warmup-epochs 1", ["--warmup-epochs", "1"]),
    "d_bs_16": ("defaults, --batch-size 16", ["--batch-size", "16"]),
    "d_img_160": ("defaults at 160 px", ["--img-size", "160"]),
    "d_prog": ("defaults, progressive resizing 96 -> 128 px", ["--img-size-start", "96"]),
    "d_drop_path": ("defaults + --drop-path-rate 0.1", ["--drop-path-rate", "0.1"]),
    "d_dropout": ("defaults + --drop-rate 0.2", ["--drop-rate", "0.2"]),
}
# rows that run the current defaults as they are (the others pin v0.1's first)
UNPINNED = {"defaults"} | {row for row in ROWS if row.startswith("d_")}
EVALS = (
    ("crops", "holdout_crops.csv", "none"),
    ("crops_hflip", "holdout_crops.csv", "hflip"),
    ("full", "holdout_full.csv", "none"),
)


def workers_args(workers: str) -> list[str]:
    """``--workers N``, or nothing for "auto": each artkit's own choice for the machine."""
    return [] if workers == "auto" else ["--workers", workers]


def common_args(split: Path, weights: Path, runs: Path, name: str, budget: str, seed: int, workers: str) -> list[str]:
    args = [
        "train",
        "--data",
        str(split),
        "--train-csv",
        str(split / "train.csv"),
        "--model",
        "tf_efficientnet_lite0",
        "--weights",
        str(weights),
        "--img-size",
        "128",
        *workers_args(workers),
        "--out",
        str(runs),
        "--name",
        name,
        "--seed",
        str(seed),
    ]
    return args + (["--epochs", budget[1:]] if budget.startswith("e") else ["--time", budget])


def run(cmd: list[str], log: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def run_row(row: str, seed: int, args, env: dict[str, str]) -> dict:
    desc, extra = ROWS[row]
    name = f"{row}_s{seed}"
    runs = args.out / "runs"
    run_dir = runs / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    py = [sys.executable, "-m", "artkit"]
    pinned = [] if row in UNPINNED else V01_DEFAULTS
    cmd = py + common_args(args.split, args.weights, runs, name, args.budget, seed, args.workers) + pinned + extra
    res: dict = {"row": row, "seed": seed, "what": desc, "options": " ".join(extra), "budget": args.budget}
    res["train_s"] = run(cmd, args.out / f"{name}.train.log", env)
    results = (run_dir / "results.csv").read_text().splitlines()
    res["epochs"] = len(results) - 1
    header = results[0].split(",")
    res["epoch_s"] = sum(float(line.split(",")[header.index("seconds")]) for line in results[1:])
    res["images_per_s"] = statistics.median(
        float(line.split(",")[header.index("images_per_s")]) for line in results[1:]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    res["val_macro_f1"] = summary["best_metrics"].get("val_macro_f1")
    for label, csv, tta in EVALS:
        out = run_dir / f"eval_{label}"
        cmd = py + [
            "eval",
            str(run_dir / "best.pt"),
            "--csv",
            str(args.split / csv),
            "--tta",
            tta,
            "--out",
            str(out),
            *workers_args(args.workers),
        ]
        res[f"eval_{label}_s"] = run(cmd, args.out / f"{name}.eval_{label}.log", env)
        res[f"{label}_macro_f1"] = json.loads((out / "metrics.json").read_text())["macro_f1"]
    if not args.keep:
        for big in ("best.pt", "last.pt"):  # keep disk use small: the numbers are what the table needs
            (run_dir / big).unlink(missing_ok=True)
    return res


def table(results: list[dict]) -> str:
    lines = [
        "| row | change | seed | quarter crops | + hflip TTA | full paintings | val (own split) | epochs | train s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {r['what']} | {r['seed']} | {r['crops_macro_f1']:.3f} | "
            f"{r['crops_hflip_macro_f1']:.3f} | {r['full_macro_f1']:.3f} | {r['val_macro_f1'] or 0:.3f} | "
            f"{r['epochs']} | {r['train_s']:.0f} |"
        )
    return "\n".join(lines)


def budget_name(budget: str) -> str:
    """'e2' -> '2ep', '30m' -> '30m': the suffix of the budget's results CSV."""
    return f"{budget[1:]}ep" if budget.startswith("e") else budget


def src_commit(src: Path) -> str:
    """The commit checked out at ``src`` (a git worktree), as ``results.commit`` names this repository's."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=src)
    return done.stdout.strip()


def csv_row(res: dict, args) -> dict:
    """The columns of bench/results/ablation_*.csv for one finished row (scores as the docs print them)."""
    command = f"python bench/ablation.py {args.split} --weights {args.weights} --rows {res['row']}"
    command += f" --seeds {res['seed']} --budget {args.budget}" + (f" --src {args.src}" if args.src else "")
    command += f" --workers {args.workers}" if args.workers != "2" else ""
    budget = f"{args.budget[1:]} epochs" if args.budget.startswith("e") else args.budget  # as the docs say it
    scores = {k: f"{res[k]:.3f}" for k in ("crops_macro_f1", "crops_hflip_macro_f1", "full_macro_f1")}
    val = res["val_macro_f1"]
    return {
        "command": command,
        **({"commit": src_commit(args.src)} if args.src else {}),  # the artkit that ran, not this script's
        "host": platform.node(),  # machines of one CPU model differ in speed: each is compared with its own defaults
        "row": res["row"],
        "change": res["what"],
        "seed": res["seed"],
        "budget": budget,
        **scores,
        "val_macro_f1": "" if val is None else f"{val:.3f}",
        "epochs": res["epochs"],
        "seconds": f"{res['train_s']:.0f}",
        "images_per_s": f"{res['images_per_s']:.1f}",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("split", type=Path)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--rows", default="base", help="comma-separated row names, or 'all' (see ROWS)")
    p.add_argument("--seeds", default="42")
    p.add_argument("--budget", default="e2", help="e<N> for N epochs, or a time such as 30m")
    p.add_argument("--out", type=Path, default=Path("bench/_work/ablation"))
    p.add_argument("--src", type=Path, help="folder whose src/ holds the artkit to run (default: the installed one)")
    p.add_argument("--workers", default="2", help="loader processes, or 'auto': the artkit under test chooses")
    p.add_argument("--redo", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the rows' best.pt and last.pt")
    p.add_argument("--table", action="store_true", help="only print the table of OUT/results.json (rows of --budget)")
    p.add_argument("--results", type=Path, help="CSV each row is appended to (default: bench/results/ablation_*.csv)")
    args = p.parse_args(argv)
    args.results = args.results or RESULTS / f"ablation_{budget_name(args.budget)}.csv"
    from results import append_row  # bench/results.py, beside this script

    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.json"
    results: list[dict] = json.loads(store.read_text()) if store.exists() else []
    if args.table:
        print(table([r for r in results if r["budget"] == args.budget]))
        return 0
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if args.src:
        env["PYTHONPATH"] = str((args.src / "src").resolve())
    rows = list(ROWS) if args.rows == "all" else args.rows.split(",")
    for row in rows:
        for seed in (int(s) for s in args.seeds.split(",")):
            key = (row, seed, args.budget)
            if not args.redo and any((r["row"], r["seed"], r["budget"]) == key for r in results):
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {row} seed {seed} ({args.budget})", flush=True)
            res = run_row(row, seed, args, env)
            results = [r for r in results if (r["row"], r["seed"], r["budget"]) != key] + [res]
            store.write_text(json.dumps(results, indent=1))
            append_row(args.results, **csv_row(res, args))
            print(
                f"  crops {res['crops_macro_f1']:.3f}  hflip {res['crops_hflip_macro_f1']:.3f}  "
                f"full {res['full_macro_f1']:.3f}  train {res['train_s']:.0f}s",
                flush=True,
            )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
